"""The fast path (generation.fastpath): when POKEMON_COMPILE compiles, which shapes it warms,
that compiled modules are used only for warmed shapes, that a failing compile or compiled call
leaves the eager path with one warning and never a failed job, the sync-free scheduler start,
and the batch size chosen from free GPU memory.

torch.compile runs for real here: with dynamo's `eager` backend in the quick tests (tracing,
guards and graph breaks as on a GPU, no code generation), with inductor on the CPU in the
`slow` one, and with inductor and CUDA graphs at 512² in the `gpu` ones (the GPU check runs
those, with a restart that reuses the compile cache).
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from generation import fastpath
from generation.device_policy import GPU_RESERVE_BYTES, device_defaults, gpu_max_batch
from generation.fastpath import FastPath, FastPathOptions, compile_mode, warm_shapes
from generation.types import GeneratedImage, GenerationRequest

GIB = 1024**3
ROOT = Path(__file__).resolve().parents[2]


def _pixels(result: Any) -> np.ndarray:
    assert isinstance(result, GeneratedImage), result
    return np.asarray(Image.open(io.BytesIO(result.png)), dtype=np.float64)


def _requests(size: int = 64, count: int = 1, steps: int = 3) -> list[GenerationRequest]:
    return [
        GenerationRequest(prompt="ピカチュウ", seed=7 + i, steps=steps, height=size, width=size)
        for i in range(count)
    ]


# ---- what POKEMON_COMPILE means, and which shapes -----------------------------------------


@pytest.mark.parametrize(
    ("setting", "device", "mode"),
    [
        ("auto", "cuda", "background"),
        ("auto", "cuda:1", "background"),
        ("auto", "cpu", "off"),
        ("on", "cuda", "blocking"),
        ("on", "cpu", "off"),
        ("off", "cuda", "off"),
    ],
)
def test_compile_setting_turns_on_for_cuda_only(setting: str, device: str, mode: str) -> None:
    assert compile_mode(setting, device) == mode


def test_unknown_compile_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, on or off"):
        compile_mode("yes", "cuda")


def test_warm_shapes_cover_every_batch_size_at_the_three_sizes_one_picture_first() -> None:
    shapes = warm_shapes(3, fastpath.bot_sizes(512))
    assert len(shapes) == 9
    assert shapes[:3] == [(1, 512, 512, "int64"), (1, 768, 512, "int64"), (1, 512, 768, "int64")]
    assert {s[0] for s in shapes} == {1, 2, 3}
    assert warm_shapes(1, [(64, 64)], scheduler="lms") == [(1, 64, 64, "float32")]


def test_options_parse_named_flags_and_refuse_unknown_ones() -> None:
    options = FastPathOptions.parse(
        "mode=max-autotune-no-cudagraphs, epilogue_fusion=0,fuse_qkv=off"
    )
    assert options.mode == "max-autotune-no-cudagraphs"
    assert options.epilogue_fusion is False
    assert options.fuse_qkv is False
    assert options.conv_1x1_as_mm is True  # untouched
    assert FastPathOptions.parse("mode=none").mode is None
    with pytest.raises(ValueError, match="name=value"):
        FastPathOptions.parse("turbo=1")
    with pytest.raises(ValueError, match="1/0"):
        FastPathOptions.parse("fuse_qkv=maybe")


# ---- POKEMON_MAX_BATCH from free memory ----------------------------------------------------


def test_max_batch_fits_free_memory_from_a_consumer_card_to_a_data_centre_one() -> None:
    assert gpu_max_batch(0, 512, 512) == 1  # nothing free still runs one picture
    assert gpu_max_batch(GPU_RESERVE_BYTES + GIB // 2, 512, 512) == 1
    # A 12 GB card with the fp16 model loaded (~3 GB) and the context: about 8.5 GiB free.
    consumer = gpu_max_batch(int(8.5 * GIB), 512, 512)
    assert 2 <= consumer <= 8
    # Portrait and landscape pictures are 1.5× the area: fewer of them fit.
    assert gpu_max_batch(int(8.5 * GIB), 768, 512) < consumer
    assert gpu_max_batch(75 * GIB, 768, 512) == 16  # an H100 after loading: the limit
    sizes = [gpu_max_batch(free * GIB, 512, 512) for free in range(0, 40)]
    assert sizes == sorted(sizes)  # more memory never gives a smaller batch


def test_device_defaults_use_free_memory_unless_max_batch_was_set() -> None:
    configured = {"size": 512, "steps": 25, "max_steps": 50, "max_batch": 4, "job_timeout": 300.0}
    big = device_defaults("cuda", **configured, free_bytes=75 * GIB)
    assert big.max_batch == 16
    assert big.changed == ("max_batch",)
    assert big.job_timeout == 300.0
    small = device_defaults("cuda:0", **configured, free_bytes=3 * GIB)
    assert small.max_batch == 1
    kept = device_defaults(
        "cuda", **configured, free_bytes=75 * GIB, explicit=frozenset({"max_batch"})
    )
    assert kept.max_batch == 4
    assert device_defaults("cuda", **configured).max_batch == 4  # free memory unknown


def test_settings_size_the_worker_from_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.generators import engine_sizing
    from bot.settings import Settings

    for name in ("POKEMON_MAX_BATCH", "POKEMON_SIZE"):
        monkeypatch.delenv(name, raising=False)

    class Loaded:
        device = "cuda"
        free_bytes = 75 * GIB

    assert engine_sizing(Settings(_env_file=None), Loaded()).max_batch == 16  # pyright: ignore[reportCallIssue]
    chosen = Settings(_env_file=None, pokemon_max_batch=2)  # pyright: ignore[reportCallIssue]
    assert engine_sizing(chosen, Loaded()).max_batch == 2


# ---- no device-to-host sync at the scheduler's start --------------------------------------


def test_scheduler_begins_at_zero_without_searching_and_steps_the_same() -> None:
    from generation.schedulers import make_scheduler

    searched: list[Any] = []
    plain = make_scheduler("dpmpp-2m", {})
    fast = fastpath.begin_at_zero(make_scheduler("dpmpp-2m", {}))
    original = fast.index_for_timestep
    fast.index_for_timestep = lambda *a, **k: searched.append(a) or original(*a, **k)
    generator = torch.Generator().manual_seed(0)
    start = torch.randn((1, 4, 8, 8), generator=generator)
    outputs = [torch.randn((1, 4, 8, 8), generator=generator) for _ in range(10)]
    samples = []
    for scheduler in (plain, fast):
        scheduler.set_timesteps(10)
        sample = start.clone()
        for index, t in enumerate(scheduler.timesteps):
            sample = scheduler.step(outputs[index], t, sample).prev_sample
        samples.append(sample)
    assert torch.equal(samples[0], samples[1])
    assert searched == []  # the `(timesteps == t).nonzero().item()` search never ran
    assert fastpath.begin_at_zero(fast) is fast  # wrapping twice is harmless


# ---- PNG encoding -------------------------------------------------------------------------


def test_png_is_encoded_at_the_fastest_zlib_level_with_the_same_pixels() -> None:
    from generation.pipeline import _png  # pyright: ignore[reportPrivateUsage]

    pixels = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    png = _png(pixels, "parameters")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels)
    idat = png.index(b"IDAT") + 4
    # The zlib header's FLEVEL bits: 0 is "fastest" (level 1); Pillow's default 6 gives 2.
    assert png[idat] == 0x78
    assert png[idat + 1] >> 6 == 0


# ---- the gate: compiled modules for warmed shapes only -------------------------------------


@pytest.fixture
def engine(tiny_model: Path) -> Any:
    """An engine of its own (the fast path changes its modules)."""
    from generation.loader import load_engine

    return load_engine(tiny_model, device="cpu", safety_checker=True)


def test_compiled_modules_run_only_warmed_shapes_and_draw_the_same_pictures(engine: Any) -> None:
    eager = engine.generate(_requests(count=2))
    fast = FastPath(engine.pipe, "cpu", FastPathOptions(backend="eager"))
    engine.path = fast
    assert fast.warm_up([(1, 64, 64, "int64")])
    assert fast.is_warm(1, 64, 64, "dpmpp-2m")
    assert not fast.is_warm(1, 64, 64, "lms")  # another timestep dtype: not traced yet

    (single,) = engine.generate(_requests(count=1))
    assert engine.pipe.unet is fast.unet  # warmed: compiled
    assert engine.pipe.safety_checker.vision_model is fast.vision
    batch = engine.generate(_requests(count=2))
    assert engine.pipe.unet is fast.eager_unet  # batch of 2 not warmed: eager
    for a, b in zip((single, batch[1]), eager, strict=False):
        assert np.abs(_pixels(a) - _pixels(b)).mean() <= 2.0
    assert np.abs(_pixels(batch[1]) - _pixels(eager[1])).mean() <= 2.0
    assert fast.failed is None


def test_a_compile_that_fails_is_one_warning_and_the_eager_path(
    engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_backend(graph: Any, inputs: Any) -> Any:
        raise RuntimeError("no compiler for this machine")

    caplog.set_level(logging.WARNING, logger="generation.fastpath")
    fast = fastpath.enable(
        engine,
        mode="blocking",
        shapes=[(1, 64, 64, "int64")],
        options=FastPathOptions(backend=broken_backend),
    )
    assert fast is not None
    assert "no compiler" in (fast.failed or "")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "running uncompiled" in warnings[0].getMessage()
    (result,) = engine.generate(_requests())
    assert isinstance(result, GeneratedImage)
    assert engine.pipe.unet is fast.eager_unet


def test_a_compiled_call_that_fails_in_a_job_reruns_it_eager(
    engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    (expected,) = engine.generate(_requests())
    fast = FastPath(engine.pipe, "cpu", FastPathOptions(backend="eager"))
    engine.path = fast
    assert fast.warm_up([(1, 64, 64, "int64")])

    class Crashing(torch.nn.Module):  # what a broken compiled kernel looks like to the pipeline
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner
            self.config = inner.config
            self.device, self.dtype = inner.device, inner.dtype

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("illegal instruction in a generated kernel")

    fast.unet = Crashing(fast.eager_unet)
    caplog.set_level(logging.WARNING, logger="generation.fastpath")
    (result,) = engine.generate(_requests())
    assert np.abs(_pixels(result) - _pixels(expected)).mean() <= 2.0
    assert "illegal instruction" in (fast.failed or "")
    assert [r.levelno for r in caplog.records].count(logging.WARNING) == 1
    engine.generate(_requests())  # stays eager, no second warning
    assert [r.levelno for r in caplog.records].count(logging.WARNING) == 1


@pytest.fixture
def inductor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """`use_cache_dir` sets inductor's variables in this process: restored afterwards."""
    for name in (
        "TORCHINDUCTOR_CACHE_DIR",
        "TORCHINDUCTOR_FX_GRAPH_CACHE",
        "TORCHINDUCTOR_AUTOGRAD_CACHE",
    ):
        monkeypatch.setenv(name, os.environ.get(name, ""))


@pytest.mark.usefixtures("inductor_env")
def test_background_warm_up_serves_eager_until_ready_then_compiled(
    engine: Any, tmp_path: Path
) -> None:
    fast = fastpath.enable(
        engine,
        mode="background",
        shapes=[(1, 64, 64, "int64")],
        cache_dir=tmp_path,
        options=FastPathOptions(backend="eager"),
    )
    assert fast is not None
    assert engine.path is fast
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor")
    (during,) = engine.generate(_requests())  # served while the other thread traces
    assert isinstance(during, GeneratedImage)
    assert fast.wait(timeout=600)
    assert fast.is_warm(1, 64, 64, "dpmpp-2m")
    assert fast.failed is None
    (after,) = engine.generate(_requests())
    assert engine.pipe.unet is fast.unet
    assert np.abs(_pixels(after) - _pixels(during)).mean() <= 2.0


def test_start_for_engine_leaves_the_cpu_and_the_fake_engine_alone(engine: Any) -> None:
    from generation.fake_engine import FakeEngine, parse

    assert fastpath.start_for_engine(engine, "auto", max_batch=2, size=64, cache_dir=None) is None
    assert not engine.path.active
    fake = FakeEngine(parse("fake:step=0"), device="cuda")
    assert fastpath.start_for_engine(fake, "on", max_batch=2, size=64, cache_dir=None) is None


# ---- inductor for real ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("inductor_env")
@pytest.mark.timeout(1800)  # gcc builds a few hundred kernels: minutes on 2 shared cores
def test_inductor_on_cpu_draws_the_eager_pictures(engine: Any, tmp_path: Path) -> None:
    """Inductor's C++ code on the CPU (gcc), the tiny checkpoint: within 2/255 of eager."""
    eager = engine.generate(_requests())
    fastpath.use_cache_dir(tmp_path)
    options = FastPathOptions(mode=None, compile_vae=False, compile_safety=False)
    fast = FastPath(engine.pipe, "cpu", options)
    engine.path = fast
    assert fast.warm_up([(1, 64, 64, "int64")]), fast.failed
    (compiled,) = engine.generate(_requests())
    assert engine.pipe.unet is fast.unet
    assert np.abs(_pixels(compiled) - _pixels(eager[0])).mean() <= 2.0
    assert fastpath.save_cache_artifacts(tmp_path)
    assert (tmp_path / fastpath.CACHE_ARTIFACTS).stat().st_size > 0
    assert any((tmp_path / "inductor").rglob("*"))


# ---- on CUDA (run by the GPU check) --------------------------------------------------------

WARMUP_SCRIPT = """
import json, sys, time
from pathlib import Path
from generation import fastpath
from generation.loader import load_engine
from generation.types import GenerationRequest
cache = Path(sys.argv[2])
fastpath.use_cache_dir(cache)
engine = load_engine(sys.argv[1], device="cuda", safety_checker=True)
started = time.monotonic()
fast = fastpath.enable(engine, mode="blocking", shapes=[(1, 512, 512, "int64")], cache_dir=cache)
warm = time.monotonic() - started
assert fast is not None and fast.failed is None, fast and fast.failed
print(json.dumps({"warmup_s": warm}))
"""


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_pictures_match_eager_at_512_on_cuda(tiny_model: Path) -> None:
    from generation.loader import load_engine

    engine = load_engine(tiny_model, device="cuda", safety_checker=True)
    eager = [engine.generate([r])[0] for r in _requests(size=512, count=3, steps=8)]
    fast = fastpath.enable(engine, mode="blocking", shapes=[(1, 512, 512, "int64")])
    assert fast is not None
    assert fast.failed is None, fast.failed
    compiled = [engine.generate([r])[0] for r in _requests(size=512, count=3, steps=8)]
    assert engine.pipe.unet is fast.unet
    for a, b in zip(compiled, eager, strict=True):
        assert np.abs(_pixels(a) - _pixels(b)).mean() <= 2.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_restart_reuses_the_compile_cache(
    tiny_model: Path, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """Two processes, one cache folder: the second warm-up is faster (both timed, in the
    junit properties that the GPU check reports)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", WARMUP_SCRIPT, str(tiny_model), str(tmp_path)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        times.append(json.loads(proc.stdout.strip().splitlines()[-1])["warmup_s"])
    record_property("first_start_warmup_s", round(times[0], 2))
    record_property("restart_warmup_s", round(times[1], 2))
    assert (tmp_path / fastpath.CACHE_ARTIFACTS).is_file()
    assert times[1] < times[0]
