"""The GPU check's fast-path phase and its machine-readable figures (bench/gpu/README.md).

`measure_fast` loads the engine as the bot does, gives it `generation.fastpath`'s compiled
modules with the options given (`--fast`), warms up the shapes the benchmark draws (one 512²
picture, and each `--fast-batches` batch), then measures the same single-image call as the
eager phase, draws the eager phase's seeds again to compare the pictures, compares one UNet
call on the same inputs (in case random weights turn fp16 rounding into drift over 25 steps),
and runs the backlog at each batch size. In the dry run the options use dynamo's `eager`
backend on the CPU: the same code path, no code generation.

`figures` is the short summary committed as `bench/results/gpu-<date>-<gpu>.json`.
"""

from __future__ import annotations

import datetime
import re
import time
from pathlib import Path
from typing import Any

SEEDS = (101, 102, 103)  # the pictures compared between eager and the fast path
FAST_BACKLOG_BATCHES = (16,)  # compiled backlogs: each batch size is one more compile
DRY_FAST_BACKLOG_BATCHES = (1,)  # one trace fewer: the suite runs the dry run
TOLERANCE = 2 / 255  # the bound on the mean absolute difference per picture


def pictures(engine: Any, plan: Any) -> list[Any]:
    """The default request at each of `SEEDS`, one call each, as uint8 arrays."""
    import io

    import numpy as np
    from PIL import Image

    from generation.types import GenerationRequest

    found = []
    for seed in SEEDS:
        request = GenerationRequest(
            prompt="かわいいピカチュウ、ポケモン、イラスト", seed=seed, steps=plan.steps,
            guidance=plan.guidance, height=plan.size, width=plan.size, scheduler=plan.scheduler,
        )  # fmt: skip
        (entry,) = engine.generate([request])
        png = getattr(entry, "png", None)
        if png is None:
            raise RuntimeError(f"seed {seed} gave no picture: {entry}")
        found.append(np.asarray(Image.open(io.BytesIO(png)), dtype=np.float64))
    return found


def mean_abs_diffs(a: list[Any], b: list[Any]) -> list[float]:
    """Per picture, the mean absolute difference in units of the full scale (1 = 255 levels)."""
    return [float(abs(x - y).mean() / 255) for x, y in zip(a, b, strict=True)]


def unet_call_diff(fast: Any, size: int) -> float:
    """One UNet call, eager and compiled, on the same inputs: mean |Δ| / mean |eager output|."""
    import torch

    unet = fast.eager_unet
    scale = fast._pipe.vae_scale_factor  # pyright: ignore[reportPrivateUsage]
    generator = torch.Generator("cpu").manual_seed(0)
    sample = torch.randn(
        (2, unet.config.in_channels, size // scale, size // scale), generator=generator
    )
    hidden = torch.randn((2, 77, unet.config.cross_attention_dim), generator=generator)
    sample = sample.to(fast.device, unet.dtype)
    hidden = hidden.to(fast.device, unet.dtype)
    t = torch.tensor(500, device=fast.device, dtype=torch.int64)
    outputs = []
    with torch.no_grad():
        for module in (unet, fast.unet):
            out = module(
                sample, t, encoder_hidden_states=hidden, timestep_cond=None,
                cross_attention_kwargs=None, added_cond_kwargs=None, return_dict=False,
            )[0]  # fmt: skip
            outputs.append(out.float().clone())
    eager, compiled = outputs
    return float((compiled - eager).abs().mean() / eager.abs().mean().clamp_min(1e-12))


def measure_fast(
    model: Path,
    plan: Any,
    *,
    options: Any,
    batches: tuple[int, ...],
    eager_pictures: list[Any] | None,
    cache: Path,
) -> dict[str, Any]:
    """The fast path's single image, its pictures against eager's, and its backlogs."""
    from bench.generation import Variant, load, measure_backlog, measure_single, release
    from generation import fastpath

    loaded_from_cache = fastpath.use_cache_dir(cache)
    started = time.perf_counter()
    engine = load(model, plan)
    load_s = time.perf_counter() - started
    try:
        fast = fastpath.FastPath(engine.pipe, engine.device, options)
        engine.path = fast
        dtype = fastpath.TIMESTEP_DTYPES.get(plan.scheduler, "float32")
        shapes = [(b, plan.size, plan.size, dtype) for b in dict.fromkeys((1, *batches))]
        began = time.perf_counter()
        if not fast.warm_up(shapes):
            raise RuntimeError(f"compiling failed: {fast.failed}")
        warmup_s = time.perf_counter() - began
        saved = fastpath.save_cache_artifacts(cache)
        name = "fast"
        result = measure_single(engine, plan, [Variant(name, plan.scheduler, plan.steps)])[name]
        if engine.pipe.unet is not fast.unet:
            raise RuntimeError("the measured call did not use the compiled UNet")
        result.update(
            load_s=load_s, warmup_s=warmup_s, warmup_s_per_shape=dict(fast.warmup_s),
            compiled=True, options=_options(options), cache_loaded=loaded_from_cache,
            cache_saved=saved,
        )  # fmt: skip
        if eager_pictures is not None:
            diffs = mean_abs_diffs(pictures(engine, plan), eager_pictures)
            result["mean_abs_diff_vs_eager"] = diffs
            result["max_abs_mean_diff_vs_eager"] = max(diffs)
        result["unet_call_relative_diff"] = unet_call_diff(fast, plan.size)
        result["backlogs"] = [measure_backlog(engine, plan, b) for b in batches]
        for row in result["backlogs"]:
            row["compiled"] = True
        # The backlogs run on the worker's thread: a compiled call failing there (e.g. CUDA
        # graphs recorded on another thread) shows here, the jobs having gone eager.
        result["failed"] = fast.failed
    finally:
        release(engine, plan.device)
    return result


def _options(options: Any) -> dict[str, Any]:
    import dataclasses

    values = dataclasses.asdict(options)
    if not isinstance(values.get("backend"), str):
        values["backend"] = getattr(values["backend"], "__name__", "callable")
    return values


def figures(data: dict[str, Any], commit: str) -> dict[str, Any]:
    """The summary a machine reads: one JSON object of the run's headline numbers."""
    results = data.get("results", {})
    env = data.get("env") or {}
    gpu = (env.get("gpu") or {}).get("name") or ("cpu (dry run)" if data.get("dry_run") else "?")
    eager = results.get("eager") or {}
    fast = results.get("fast") or {}
    backlogs = [*(results.get("batches") or []), *(fast.get("backlogs") or [])]
    best = max(backlogs, key=lambda row: row["images_per_s"]) if backlogs else {}
    card = results.get("card") or {}
    cuda = str(data.get("device", "")).startswith("cuda")
    default = fast if cuda else eager  # POKEMON_COMPILE=auto: compiled on CUDA only
    peaks = [row.get("peak_memory_bytes") or 0 for row in (eager, fast, *backlogs) if row]
    return {
        "gpu": gpu,
        "commit": commit,
        "date": data.get("started_utc"),
        "dry_run": data.get("dry_run"),
        "complete": data.get("complete"),
        "torch": (data.get("machine") or {}).get("torch"),
        "size": (data.get("config") or {}).get("size"),
        "steps": (data.get("config") or {}).get("steps"),
        "default_s_per_image": default.get("s_per_image"),
        "eager_s_per_image": eager.get("s_per_image"),
        "compiled_s_per_image": fast.get("s_per_image"),
        "compile_warmup_s": fast.get("warmup_s"),
        "backlog_images_per_s": best.get("images_per_s"),
        "backlog_best_max_batch": best.get("max_batch"),
        "backlog_best_compiled": bool(best.get("compiled")),
        "card_s_per_image": card.get("s_per_image"),
        "max_abs_mean_diff_vs_eager": fast.get("max_abs_mean_diff_vs_eager"),
        "unet_call_relative_diff": fast.get("unet_call_relative_diff"),
        "peak_mib": max(peaks) / 2**20 if peaks else None,
        "fast_options": fast.get("options"),
        "fast_path_failed": fast.get("failed"),
        "targets_met": {
            "default_s_per_image<=0.30": _at_most(default.get("s_per_image"), 0.30),
            "backlog_images_per_s>=8": _at_least(best.get("images_per_s"), 8.0),
            "max_abs_mean_diff_vs_eager<=2/255": _at_most(
                fast.get("max_abs_mean_diff_vs_eager"), TOLERANCE
            ),
        },
    }


def _at_most(value: float | None, bound: float) -> bool | None:
    return None if value is None else value <= bound


def _at_least(value: float | None, bound: float) -> bool | None:
    return None if value is None else value >= bound


def figures_name(summary: dict[str, Any]) -> str:
    """`gpu-<date>-<gpu>.json`, e.g. gpu-20261207-nvidia-h100-80gb-hbm3.json."""
    stamp = str(summary.get("date") or datetime.datetime.now(datetime.UTC).isoformat())
    day = re.sub(r"\D", "", stamp[:10])
    slug = re.sub(r"[^a-z0-9]+", "-", str(summary.get("gpu", "unknown")).lower()).strip("-")
    return f"gpu-{day}-{slug or 'unknown'}.json"
