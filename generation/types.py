"""Domain values that cross the generation boundary: plain, frozen, no torch, no discord."""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEDULERS = ("dpmpp-2m", "lms")


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Everything the pipeline needs for one image. Validation happens before this is built."""

    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 25
    guidance: float = 7.5
    height: int = 512
    width: int = 512
    scheduler: str = "dpmpp-2m"

    def batch_key(self) -> tuple[int, int, int, str, float]:
        """Requests with equal keys can share one pipeline call (dynamic batching)."""
        return (self.height, self.width, self.steps, self.scheduler, self.guidance)


@dataclass(frozen=True, slots=True)
class TokenizedPrompt:
    """The 77 ids the text encoder sees, how many real tokens the prompt had, and whether it was cut."""

    ids: tuple[int, ...]
    count: int
    truncated: bool


@dataclass(frozen=True, slots=True)
class Progress:
    """One denoising step finished. `elapsed` counts from when the job started running."""

    job_id: int
    step: int
    total: int
    elapsed: float


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """What the pipeline returns for one request (before the worker adds queue timings)."""

    png: bytes
    seed: int
    steps: int
    width: int
    height: int
    token_count: int
    truncated: bool
    timings: dict[str, float] = field(default_factory=dict[str, float])


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """A finished job as the worker hands it back to the event loop."""

    job_id: int
    png: bytes
    seed: int
    steps: int
    width: int
    height: int
    token_count: int
    truncated: bool
    queued_seconds: float
    run_seconds: float
    batch_size: int = 1
