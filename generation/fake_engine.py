"""A fake engine for tests and benchmarks: no model, no torch, steps that only take time.

Selected with `POKEMON_MODEL=fake:OPTIONS` (for `pokemon-bot worker`, or any place that loads
an engine through `generation.fake_engine.open_engine`). It is a testing and benchmark tool,
never for users: the pictures are 8×8 squares coloured by the seed.

OPTIONS is a comma-separated list of `name=value`:

- `step=S`: seconds per denoising step of a batch of one (default 0.01);
- `member=S`: seconds each further batch member adds to a step (default 0: batching is free);
- `decode=S`: seconds to decode each member after the last step (default 0);
- `fail=WORD`: a request whose prompt contains WORD fails on its own (the others in its batch
  are fine), as an unsafe or blank picture would;
- `crash=WORD`: a prompt containing WORD kills the process after its last step (exit 70), as
  a segfault or the kernel's OOM killer would mid-run; a poison job for the worker tests.

A step of a batch of `b` takes `step + (b - 1) × member` seconds, the shape a GPU shows: one
UNet call per step whose cost grows sub-linearly with the batch (see docs/PERFORMANCE.md).
Steps sleep, so many fake workers share a small CPU without slowing each other down.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generation.errors import GenerationError, JobCancelledError, ModelLoadError
from generation.types import GeneratedImage, GenerationRequest, TokenizedPrompt

if TYPE_CHECKING:
    from generation.translate import Translator

PREFIX = "fake:"
CRASH_EXIT = 70


@dataclass(frozen=True, slots=True)
class FakeOptions:
    step: float = 0.01
    member: float = 0.0
    decode: float = 0.0
    fail: str = ""
    crash: str = ""


def _fake_latents(requests: Sequence[GenerationRequest], step: int, total: int) -> Any:
    """Latents for a preview, one row per picture: each seed's noise fading towards a colour
    as the steps go (torch only once a preview asks for them)."""
    import torch

    first = requests[0]
    shape = (4, first.height // 8, first.width // 8)
    done = step / max(total, 1)
    rows = [
        torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * (1 - done) + done
        for request in requests
        for seed in request.seeds()
    ]
    return torch.stack(rows)


def is_fake(model: str) -> bool:
    return model.startswith(PREFIX)


def parse(spec: str) -> FakeOptions:
    """`fake:step=0.05,member=0.01` → options. Raises `ModelLoadError` (one line) on bad input."""
    body = spec.removeprefix(PREFIX)
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in body.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name not in FakeOptions.__dataclass_fields__:
            known = ", ".join(FakeOptions.__dataclass_fields__)
            raise ModelLoadError(f"fake engine: {part!r} is not name=value with a name in {known}")
        if name in {"fail", "crash"}:
            values[name] = value
            continue
        try:
            seconds = float(value)
        except ValueError:
            raise ModelLoadError(f"fake engine: {name}={value!r} is not a number") from None
        if seconds < 0:
            raise ModelLoadError(f"fake engine: {name} must not be negative")
        values[name] = seconds
    return FakeOptions(**values)


class FakeEngine:
    """Implements the worker's `EngineProtocol` with sleeps."""

    dtype = "none"
    safety_checker = False

    def __init__(self, options: FakeOptions, *, device: str = "fake", model: str = "fake") -> None:
        self.options = options
        self.device = device
        self.model = model  # what results say drew them: the `fake:...` setting, by default

    def tokenize(self, text: str) -> TokenizedPrompt:
        count = min(len(text), 75)
        return TokenizedPrompt(ids=(1,) * 77, count=count, truncated=len(text) > 75)

    def step_seconds(self, batch: int) -> float:
        return self.options.step + (batch - 1) * self.options.member

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_step: Callable[[int, int, Callable[[], Any]], None] | None = None,
        is_cancelled: Callable[[int], bool] | None = None,
    ) -> list[GeneratedImage | GenerationError]:
        options = self.options
        cancelled = [False] * len(requests)

        def check() -> bool:
            for i in range(len(requests)):
                cancelled[i] = cancelled[i] or bool(is_cancelled and is_cancelled(i))
            return all(cancelled)

        total = requests[0].steps
        for step in range(1, total + 1):
            if check():
                break
            time.sleep(self.step_seconds(len(requests)))
            if on_step is not None:
                on_step(step, total, lambda step=step: _fake_latents(requests, step, total))
        if options.crash and any(options.crash in r.prompt for r in requests):
            os._exit(CRASH_EXIT)
        check()
        # One entry per picture, as the real engine answers a request with `count`.
        entries: list[GeneratedImage | GenerationError] = []
        for i, request in enumerate(requests):
            for seed in request.seeds():
                if cancelled[i]:
                    entries.append(JobCancelledError(f"cancelled: {request.prompt}"))
                elif options.fail and options.fail in request.prompt:
                    entries.append(
                        GenerationError(f"the fake engine fails {options.fail!r} prompts")
                    )
                else:
                    time.sleep(options.decode)
                    entries.append(
                        GeneratedImage(
                            png=tiny_png(seed),
                            seed=seed,
                            steps=request.steps,
                            width=request.width,
                            height=request.height,
                            token_count=self.tokenize(request.prompt).count,
                            truncated=False,
                            # No translator here: the texts go to the "model" as given.
                            prompt_used=request.prompt,
                            negative_used=request.negative_prompt,
                        )
                    )
        return entries


def tiny_png(seed: int, side: int = 8) -> bytes:
    """A valid side×side RGB PNG of one colour taken from the seed (no Pillow needed)."""
    colour = bytes(((seed >> shift) & 0xFF) for shift in (16, 8, 0))
    raw = b"".join(b"\x00" + colour * side for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")
    out.write(chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)))
    out.write(chunk(b"IDAT", zlib.compress(raw)))
    out.write(chunk(b"IEND", b""))
    return out.getvalue()


def open_engine(
    model: str,
    *,
    device: str,
    safety_checker: bool = True,
    compile: bool = False,
    translator: Translator | None = None,
) -> Any:
    """The engine for `model`: a `FakeEngine` for `fake:...`, else the real loader's Engine.

    `translator` serves the real Engine's `translate` requests (see `load_engine`); the fake
    engine has no text model and draws every prompt as given, so it takes none.
    """
    if is_fake(model):
        return FakeEngine(parse(model), device=device if device != "auto" else "fake", model=model)
    from generation.loader import load_engine

    return load_engine(
        model,
        device=device,
        safety_checker=safety_checker,
        compile=compile,
        translator=translator,
    )
