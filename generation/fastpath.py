"""The fast path: the UNet, the VAE decode and the safety checker's vision tower compiled with
`torch.compile`, used only for the shapes already warmed up; everything else runs eager.

`POKEMON_COMPILE` picks it (`compile_mode`): `auto` (the default) turns it on for CUDA with the
whole warm-up in the background, so the bot serves from the eager modules until each compiled
shape is ready; `on` is today's meaning, compile on CUDA and wait for the first shape (one
square picture at POKEMON_SIZE) before serving, the others in the background; `off` never
compiles. The CPU is `off` under `auto`; `on` logs that compiling is for CUDA.

How it stays safe:
- *Shape gating.* `FastPath.select` runs before each batch on the worker thread: it puts the
  compiled UNet into the pipeline only when this batch's (batch size, height, width, timestep
  dtype) was warmed, else the eager one. The decode and the safety checker are gated the same
  way. A compile therefore never happens inside a user's job.
- *Failure is one warning.* A compile or warm-up that raises, or a compiled call that raises
  in a job, logs one warning line and turns the fast path off for good; the job is re-run
  eager (`guard`), never failed.
- *A restart reuses the work.* `use_cache_dir` points inductor's on-disk caches (FX graph,
  autotuning, Triton kernels) at `POKEMON_COMPILE_CACHE` (a volume in compose) and loads the
  portable artefacts of `torch.compiler.save_cache_artifacts` saved after the last warm-up.
- *No device-to-host sync per step.* `begin_at_zero` gives the text-to-image scheduler its
  start index, so DPM-Solver's first step does not search the timesteps on the GPU (a
  `.nonzero().item()`); NaN and black checks already run after the decode.

The compiled modules wrap the very eager modules (same weights): fusing the QKV projections
and `channels_last` change the eager path too, which stays numerically the same model.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

CompileSetting = Literal["auto", "on", "off"]
COMPILE_SETTINGS: tuple[CompileSetting, ...] = ("auto", "on", "off")
# "reduce-overhead" is inductor plus CUDA graphs: one replay per UNet call instead of ~1 000
# kernel launches, which is what a single 512² picture is bound by (docs/PERFORMANCE.md: the
# host, not the GPU, sets the pace). "max-autotune-no-cudagraphs" tunes kernels instead
# (longer compile, no graphs); "max-autotune" does both. The GPU run chooses (`--fast`).
COMPILE_MODE = "reduce-overhead"
# One static graph per shape: the best kernels, and CUDA graphs need static shapes anyway.
COMPILE_DYNAMIC = False
CACHE_ARTIFACTS = "mega-cache.bin"  # torch.compiler.save_cache_artifacts, in the cache dir
# The timestep dtype each scheduler hands the UNet (dynamo specialises on it).
TIMESTEP_DTYPES = {"dpmpp-2m": "int64", "lms": "float32"}

Shape = tuple[int, int, int, str]  # pictures in the batch, height, width, timestep dtype


@dataclasses.dataclass(frozen=True, slots=True)
class FastPathOptions:
    """Each part of the fast path behind a named flag, so a GPU run can measure each.

    `parse("mode=max-autotune-no-cudagraphs,epilogue_fusion=0")` changes some of them.
    """

    mode: str | None = COMPILE_MODE
    backend: Any = "inductor"  # a name, or a callable backend (tests)
    fuse_qkv: bool = True  # diffusers' fuse_qkv_projections (needs AttnProcessor2_0)
    channels_last: bool = True  # UNet and VAE in NHWC, what tensor cores want
    conv_1x1_as_mm: bool = True  # inductor: 1×1 convolutions as matmuls
    coordinate_descent_tuning: bool = False  # inductor: tune each kernel's block sizes (slow)
    epilogue_fusion: bool = True  # inductor: fuse pointwise ops into matmul epilogues
    compile_vae: bool = True
    compile_safety: bool = True

    @classmethod
    def parse(cls, text: str) -> FastPathOptions:
        values: dict[str, Any] = {}
        names = {f.name: f for f in dataclasses.fields(cls)}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or name not in names:
                raise ValueError(f"{part!r}: use name=value with name one of {', '.join(names)}")
            value = value.strip()
            if name in ("mode", "backend"):
                values[name] = None if value in ("", "none", "default") else value
            elif value.lower() in ("1", "true", "on", "yes"):
                values[name] = True
            elif value.lower() in ("0", "false", "off", "no"):
                values[name] = False
            else:
                raise ValueError(f"{part!r}: {name} takes 1/0, on/off or true/false")
        return cls(**values)


def compile_mode(setting: str, device: str) -> Literal["off", "background", "blocking"]:
    """What `POKEMON_COMPILE` means on `device`: no compile, all warm-up in the background,
    or the first shape warmed before serving (the others in the background)."""
    if setting not in COMPILE_SETTINGS:
        raise ValueError(f"POKEMON_COMPILE is auto, on or off, not {setting!r}")
    if setting == "off":
        return "off"
    if not device.startswith("cuda"):
        if setting == "on":
            log.info("torch.compile is used on CUDA only; running %s uncompiled", device)
        return "off"
    return "blocking" if setting == "on" else "background"


def warm_shapes(
    max_batch: int, sizes: Iterable[tuple[int, int]], scheduler: str = "dpmpp-2m"
) -> list[Shape]:
    """The shapes the bot draws, most common first: one picture at each size, then two, ...
    up to `max_batch`. `sizes` are (width, height): square, portrait, landscape."""
    dtype = TIMESTEP_DTYPES.get(scheduler, "float32")
    unique = list(dict.fromkeys(sizes))
    return [(batch, h, w, dtype) for batch in range(1, max_batch + 1) for w, h in unique]


class EagerPath:
    """No compiling: the modules the pipeline was loaded with."""

    failed: str | None = None

    @property
    def active(self) -> bool:
        """Whether compiled modules may be used."""
        return False

    def select(self, pipe: Any, batch: int, height: int, width: int, scheduler: str) -> None:
        return None

    def decode(self, vae: Any, latents: Any) -> Any:
        return vae.decode(latents, return_dict=False)[0]

    def guard(self, run: Callable[[], T]) -> T:
        return run()


class FastPath(EagerPath):
    """Compiled twins of an Engine's modules, each used only for shapes already warmed."""

    def __init__(self, pipe: Any, device: str, options: FastPathOptions | None = None) -> None:
        import torch

        self.options = options or FastPathOptions()
        self.device = device
        self.failed = None
        self._pipe = pipe
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._warm_unet: set[Shape] = set()
        self._warm_vae: set[tuple[int, int, int]] = set()
        self._warm_safety = False
        self._in_use = False  # the last `select` put a compiled module in
        self.warmup_s: dict[str, float] = {}  # shape → seconds its warm-up took
        self.eager_unet = pipe.unet
        self.eager_vision = getattr(pipe.safety_checker, "vision_model", None)
        options = self.options
        if options.fuse_qkv and hasattr(pipe.unet, "fuse_qkv_projections"):
            pipe.unet.fuse_qkv_projections()  # replaces AttnProcessor2_0 by its fused twin
            pipe.vae.fuse_qkv_projections()
        if options.channels_last:
            pipe.unet.to(memory_format=torch.channels_last)
            pipe.vae.to(memory_format=torch.channels_last)
        _inductor_settings(options)
        compile_options: dict[str, Any] = {"backend": options.backend, "dynamic": COMPILE_DYNAMIC}
        if options.mode and options.backend == "inductor":
            compile_options["mode"] = options.mode
        compile_fn: Any = torch.compile  # torch's overloads leave the return type bare
        self.unet: Any = compile_fn(pipe.unet, **compile_options)
        vae = pipe.vae
        self._decode: Any = compile_fn(vae.decode, **compile_options)
        self.vision: Any = (
            compile_fn(self.eager_vision, **compile_options)
            if self.eager_vision is not None
            else None
        )

    @property
    def active(self) -> bool:
        return self.failed is None

    def is_warm(self, batch: int, height: int, width: int, scheduler: str) -> bool:
        dtype = TIMESTEP_DTYPES.get(scheduler, "float32")
        return self.failed is None and (batch, height, width, dtype) in self._warm_unet

    # -- per batch, on the worker thread ------------------------------------------------

    def select(self, pipe: Any, batch: int, height: int, width: int, scheduler: str) -> None:
        """Put the compiled modules in for a warmed shape, the eager ones otherwise."""
        warm = self.is_warm(batch, height, width, scheduler)
        wanted = self.unet if warm else self.eager_unet
        if pipe.unet is not wanted:
            pipe.unet = wanted
        checker = pipe.safety_checker
        if checker is not None and self.vision is not None:
            vision = self.vision if self._warm_safety and self.failed is None else self.eager_vision
            if checker.vision_model is not vision:
                checker.vision_model = vision
        self._in_use = warm

    def decode(self, vae: Any, latents: Any) -> Any:
        key = (int(latents.shape[0]), int(latents.shape[2]), int(latents.shape[3]))
        if self.failed is None and key in self._warm_vae:
            return self._decode(latents, return_dict=False)[0]
        return vae.decode(latents, return_dict=False)[0]

    def guard(self, run: Callable[[], T]) -> T:
        """`run()`; if it fails with compiled modules in, turn them off and run it eager."""
        try:
            return run()
        except Exception as exc:
            if not self._in_use or _is_out_of_memory(exc):
                raise
            self.fail(exc, "a compiled call failed")
            self.select(self._pipe, 0, 0, 0, "")
            return run()

    def fail(self, exc: BaseException, what: str) -> None:
        """One warning line; the eager path from now on."""
        with self._lock:
            if self.failed is not None:
                return
            self.failed = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        log.warning("%s; running uncompiled from now on (%s)", what, self.failed)

    # -- warm-up ------------------------------------------------------------------------

    def warm_up(self, shapes: Sequence[Shape]) -> bool:
        """Compile and run each shape once (on this thread); False if compiling failed."""
        import torch

        started = time.monotonic()
        pipe = self._pipe
        for shape in shapes:
            if self.failed is not None:
                return False
            batch, height, width, dtype = shape
            if shape in self._warm_unet:
                continue
            began = time.monotonic()
            try:
                with torch.no_grad():
                    self._warm_one(pipe, batch, height, width, dtype)
            except Exception as exc:
                self.fail(exc, f"compiling for {batch}×{width}×{height} failed")
                return False
            self._warm_unet.add(shape)
            self.warmup_s[f"{batch}x{width}x{height}"] = time.monotonic() - began
            log.info(
                "compiled for %d×%d×%d in %.1fs", batch, width, height, time.monotonic() - began
            )
        log.info("fast path warm for %d shapes in %.1fs", len(shapes), time.monotonic() - started)
        return True

    def _warm_one(self, pipe: Any, batch: int, height: int, width: int, dtype: str) -> None:
        import torch

        unet = self.eager_unet
        config = unet.config
        scale = pipe.vae_scale_factor
        weights = unet.dtype
        sample = torch.randn(
            (2 * batch, config.in_channels, height // scale, width // scale),
            device=self.device,
            dtype=weights,
        )
        hidden = torch.randn(
            (2 * batch, 77, config.cross_attention_dim), device=self.device, dtype=weights
        )
        t = torch.tensor(500, device=self.device, dtype=getattr(torch, dtype))
        for _ in range(2):  # CUDA graphs record on the second call
            # The very call the pipelines make (dynamo specialises on the keywords).
            self.unet(
                sample,
                t,
                encoder_hidden_states=hidden,
                timestep_cond=None,
                cross_attention_kwargs=None,
                added_cond_kwargs=None,
                return_dict=False,
            )
        if self.options.compile_vae and (1, height // scale, width // scale) not in self._warm_vae:
            latents = sample[:1]
            for _ in range(2):
                self._decode(latents, return_dict=False)
            self._warm_vae.add((1, height // scale, width // scale))
        if self.options.compile_safety and self.vision is not None and not self._warm_safety:
            checker = pipe.safety_checker
            clip = torch.randn((1, 3, 224, 224), device=self.device, dtype=checker.dtype)
            for _ in range(2):
                self.vision(clip)
            self._warm_safety = True
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)

    def start(self, shapes: Sequence[Shape], *, cache_dir: Path | None = None) -> threading.Thread:
        """Warm `shapes` up on a background thread (the worker serves eager meanwhile); the
        cache's portable artefacts are saved when it is done."""

        def run() -> None:
            if self.warm_up(shapes) and cache_dir is not None:
                save_cache_artifacts(cache_dir)

        thread = threading.Thread(target=run, name="compile-warmup", daemon=True)
        self._thread = thread
        thread.start()
        return thread

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background warm-up; True when it has ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()


def begin_at_zero(scheduler: Any) -> Any:
    """Make a text-to-image scheduler start at index 0 without searching its timesteps.

    diffusers' multistep schedulers find their first index with
    `(timesteps == t).nonzero().item()`, a device-to-host sync, unless a begin index is set;
    text-to-image always begins at 0 and its pipeline never sets one (image-to-image does, and
    its own `set_begin_index` call after `set_timesteps` still wins)."""
    if getattr(scheduler, "_begins_at_zero", False) or not hasattr(scheduler, "set_begin_index"):
        return scheduler
    set_timesteps = scheduler.set_timesteps

    def set_timesteps_from_zero(*args: Any, **kwargs: Any) -> Any:
        result = set_timesteps(*args, **kwargs)
        scheduler.set_begin_index(0)
        return result

    scheduler.set_timesteps = set_timesteps_from_zero
    scheduler._begins_at_zero = True
    return scheduler


def _inductor_settings(options: FastPathOptions) -> None:
    import torch

    if options.backend != "inductor":
        return
    import torch._inductor.config as inductor  # pyright: ignore[reportMissingImports]

    inductor.conv_1x1_as_mm = options.conv_1x1_as_mm
    inductor.coordinate_descent_tuning = options.coordinate_descent_tuning
    inductor.epilogue_fusion = options.epilogue_fusion
    inductor.fx_graph_cache = True
    dynamo: Any = torch._dynamo.config  # pyright: ignore[reportPrivateUsage]
    # One graph per shape: max_batch × 3 sizes of them, more than dynamo's default of 8.
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo, name):
            setattr(dynamo, name, max(getattr(dynamo, name), 64))


def use_cache_dir(cache_dir: Path) -> bool:
    """Point inductor's on-disk caches at `cache_dir` and load the saved artefacts, if any.
    True when artefacts were loaded (a restart that skips compiling)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir / "inductor")
    os.environ["TORCHINDUCTOR_FX_GRAPH_CACHE"] = "1"
    os.environ["TORCHINDUCTOR_AUTOGRAD_CACHE"] = "1"
    artefacts = cache_dir / CACHE_ARTIFACTS
    if not artefacts.is_file():
        return False
    import torch

    load = getattr(torch.compiler, "load_cache_artifacts", None)
    if load is None:
        return False
    try:
        load(artefacts.read_bytes())
    except Exception as exc:  # a cache from another torch: compile afresh
        log.warning("cannot load the compile cache %s (%s); compiling afresh", artefacts, exc)
        return False
    log.info("loaded compiled artefacts from %s", artefacts)
    return True


def save_cache_artifacts(cache_dir: Path) -> bool:
    """Save torch's portable compile artefacts next to the on-disk caches."""
    import torch

    save = getattr(torch.compiler, "save_cache_artifacts", None)
    if save is None:
        return False
    try:
        saved = save()
        if saved is None:
            return False
        data, _info = saved
        path = cache_dir / CACHE_ARTIFACTS
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # workers may share the folder
        tmp.write_bytes(data)
        tmp.replace(path)
    except Exception as exc:
        log.warning("cannot save the compile cache to %s: %s", cache_dir, exc)
        return False
    return True


def enable(
    engine: Any,
    *,
    mode: Literal["background", "blocking"],
    shapes: Sequence[Shape],
    cache_dir: Path | None = None,
    options: FastPathOptions | None = None,
) -> FastPath | None:
    """Give `engine` (a `generation.pipeline.Engine`) its fast path and warm `shapes` up:
    `blocking` warms the first shape before returning, then the rest in the background.
    Any failure is one warning and the engine stays eager (None)."""
    if cache_dir is not None:
        try:
            use_cache_dir(cache_dir)
        except OSError as exc:
            log.warning("compile cache %s unusable (%s); compiling without it", cache_dir, exc)
            cache_dir = None
    try:
        fast = FastPath(engine.pipe, engine.device, options)
    except Exception as exc:
        log.warning("cannot set up torch.compile (%s); running uncompiled", exc)
        return None
    engine.path = fast
    engine.compiled = True
    rest = list(shapes)
    if mode == "blocking" and rest:
        started = time.monotonic()
        if not fast.warm_up(rest[:1]):
            return fast
        log.info("compiled and warmed up in %.1fs", time.monotonic() - started)
        rest = rest[1:]
    if rest:
        fast.start(rest, cache_dir=cache_dir)
    elif cache_dir is not None:
        save_cache_artifacts(cache_dir)
    return fast


def _is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def free_gpu_bytes(device: str) -> int | None:
    """Bytes free on `device` now (`torch.cuda.mem_get_info`); None off CUDA or on error."""
    if not device.startswith("cuda"):
        return None
    import torch

    try:
        free, _total = torch.cuda.mem_get_info(torch.device(device))
    except Exception:
        return None
    return int(free)


def bot_sizes(size: int) -> list[tuple[int, int]]:
    """(width, height) of the bot's three sizes at POKEMON_SIZE `size`: square, portrait,
    landscape, the long side 1.5 × `size` rounded to a multiple of 8 (as bot.validation)."""
    long = max(8, round(size * 1.5 / 8) * 8)
    return [(size, size), (size, long), (long, size)]


def start_for_engine(
    engine: Any,
    setting: str,
    *,
    max_batch: int,
    size: int,
    cache_dir: Path | None,
    options: FastPathOptions | None = None,
) -> FastPath | None:
    """Start `POKEMON_COMPILE`'s fast path for a loaded engine, warming every shape the bot
    draws (each batch size up to `max_batch` × the three sizes at `size`); None when it is
    off there, or `engine` is not a loaded model (the fake engine)."""
    if getattr(engine, "pipe", None) is None:
        return None
    mode = compile_mode(setting, str(engine.device))
    if mode == "off":
        return None
    shapes = warm_shapes(max_batch, bot_sizes(size))
    log.info(
        "compiling %d shapes (%s)%s", len(shapes), COMPILE_MODE,
        "; serving uncompiled until each is ready" if mode == "background" else "",
    )  # fmt: skip
    return enable(engine, mode=mode, shapes=shapes, cache_dir=cache_dir, options=options)
