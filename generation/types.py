"""Domain values that cross the generation boundary: plain, frozen, no torch, no discord."""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEDULERS = ("dpmpp-2m", "lms")
MAX_COUNT = 4  # pictures one request may ask for
SEED_SPACE = 2**32  # seeds wrap here: picture i of a request has seed (seed + i) % SEED_SPACE
# What a request asks the generator to run: a drawing (the engine), or an upscale (the upscaler
# makes `init_image` 4x larger; no prompt work, one picture per request).
DRAW, UPSCALE = "draw", "upscale"
KINDS = (DRAW, UPSCALE)


def member_seed(seed: int, index: int) -> int:
    """The seed of picture `index` of a request with `seed`: seed, seed+1, ... (wrapping at
    2**32, so every seed stays one a user can type to redraw that picture alone)."""
    return (seed + index) % SEED_SPACE


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
    # Translate an English prompt and negative prompt (each on its own) to Japanese before
    # tokenizing; text with any Japanese character, or with no Latin letter, is left alone.
    translate: bool = False
    # Image-to-image: the source picture as encoded PNG/JPEG/WebP bytes (checked and decoded by
    # `generation.images`), and how much of it to repaint: 0 for text-to-image, 0.1-0.9 here.
    init_image: bytes | None = field(default=None, repr=False)
    strength: float = 0.0
    # How many pictures: picture i has seed `member_seed(seed, i)`; all run in one batch.
    count: int = 1
    # DRAW, or UPSCALE: `init_image` made 4x larger by the upscaler (prompt fields unused).
    kind: str = DRAW

    @property
    def is_img2img(self) -> bool:
        return self.init_image is not None

    def seeds(self) -> tuple[int, ...]:
        """The seed of each picture, in order."""
        return tuple(member_seed(self.seed, i) for i in range(self.count))

    def denoising_steps(self) -> int:
        """How many steps actually run: all of them, or diffusers' `int(steps * strength)`."""
        if not self.is_img2img:
            return self.steps
        return min(int(self.steps * self.strength), self.steps)

    def batch_key(self) -> tuple[str, int, int, int, str, float, bool, float]:
        """Requests with equal keys can share one pipeline call (dynamic batching).

        Upscales batch only with upscales (another model runs them). Image-to-image jobs batch
        only with image-to-image jobs of the same strength (the strength decides which
        timesteps run).
        """
        return (
            self.kind,
            self.height,
            self.width,
            self.steps,
            self.scheduler,
            self.guidance,
            self.is_img2img,
            self.strength,
        )


@dataclass(frozen=True, slots=True)
class TokenizedPrompt:
    """The 77 ids the text encoder sees, how many real tokens the prompt had, and whether it was cut."""

    ids: tuple[int, ...]
    count: int
    truncated: bool


@dataclass(frozen=True, slots=True)
class Progress:
    """One denoising step finished. `elapsed` counts from when the job started running.
    `preview`: a small JPEG of the job's picture(s) so far, on the steps that made one
    (`generation.preview.BatchPreviews`), else None."""

    job_id: int
    step: int
    total: int
    elapsed: float
    preview: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One picture as the pipeline returns it (a request with `count` n gets n of these)."""

    png: bytes
    seed: int
    steps: int
    width: int
    height: int
    token_count: int
    truncated: bool
    timings: dict[str, float] = field(default_factory=dict[str, float])
    # The texts the tokenizer actually got: the request's, or their Japanese translation.
    prompt_used: str = ""
    negative_used: str = ""
    # How `png` is encoded: "png", or for an upscale over Discord's limit "webp" / "jpeg".
    format: str = "png"


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """A finished job as the worker hands it back to the event loop: its pictures (one per
    `count`, in seed order) and the job's timings. `batch_size` counts the pictures of the
    engine call the job ran in (its own included). `model`: the model that drew them (the
    engine's Hub id or folder), which a remote worker may have other than the bot's setting;
    empty from a worker older than this field."""

    job_id: int
    images: tuple[GeneratedImage, ...]
    queued_seconds: float
    run_seconds: float
    batch_size: int = 1
    model: str = ""

    @property
    def first(self) -> GeneratedImage:
        """The first picture (every picture of a job shares its texts, steps and size)."""
        return self.images[0]
