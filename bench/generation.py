"""Generation benchmark: seconds per image, images per second and peak memory.

Measures (a) the model card's recipe (LMS, 100 steps, fp32 weights under `torch.autocast` on
CUDA, fp32 on CPU), (b) the project's default (`bot.settings.Settings` defaults: dpmpp-2m at
POKEMON_STEPS, fp16 weights on CUDA), (c) a backlog through a real `GenerationWorker` with
`max_batch` 1, 2, 4 and 8, and the per-step cost of LMS's scheduler (diffusers' own vs. the
project's cached coefficients). CPU runs use the tiny reference checkpoint at 64²; CUDA runs
use the full SD 1.x architecture with random weights built from `bench/sd1x-config/` at 512².
Torch runs as in the bot: the main thread never runs it, each part runs on a thread that has
ended before the next starts; on CPU (b) is also timed beside a second thread's OpenMP team,
the cost the bot must never pay (`bench.common.second_team`).

    python bench/generation.py                    # CPU: tiny model; CUDA: SD 1.x, 512²
    python bench/generation.py --quick --json out.json   # CI smoke (seconds)
    python bench/generation.py --device cuda --json bench-h100.json

See docs/PERFORMANCE.md for the results and what they mean.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ is first on sys.path and this file would shadow the `generation`
# package: put the repository root in front.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import (
    TINY_MODEL,
    machine,
    median,
    mib,
    peak_memory_bytes,
    peak_memory_source,
    reset_peak_memory,
    second_team_cost,
    table,
    write_json,
)
from bench.sd1x import build_sd1x  # also imported from here by bench/gpu/run.py and tests
from generation.threads import call_on_own_thread, wait_ended

log = logging.getLogger("bench.generation")

BATCH_SIZES = (1, 2, 4, 8)
CARD_STEPS = 100  # the model card's num_inference_steps
SD1X = "sd1x"  # --model value: random weights in the SD 1.x architecture
PROMPT = "かわいいピカチュウ、ポケモン、イラスト"


@dataclass(frozen=True, slots=True)
class Plan:
    """What one run measures, after defaults are filled in from the device and --quick."""

    device: str
    model: str  # a folder, or SD1X
    size: int
    steps: int  # the project default's steps (b) and the backlog runs (c)
    card_steps: int
    scheduler: str
    guidance: float
    batch_sizes: tuple[int, ...]
    backlog: int
    repeats: int
    scheduler_steps: int
    scheduler_repeats: int
    quick: bool
    cache: Path
    compile: bool = False


# ---- arguments --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark image generation (see docs/PERFORMANCE.md)."
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument(
        "--model",
        default=None,
        help=f"a model folder, or {SD1X!r} (random SD 1.x weights built from bench/sd1x-config); "
        "default: the tiny reference checkpoint on CPU, sd1x on CUDA",
    )
    parser.add_argument("--size", type=int, default=None, help="image side (64 tiny, 512 sd1x)")
    parser.add_argument(
        "--steps", type=int, default=None, help="steps of the default config (POKEMON_STEPS)"
    )
    parser.add_argument(
        "--card-steps",
        type=int,
        default=None,
        help=f"steps of the model card's recipe ({CARD_STEPS})",
    )
    parser.add_argument(
        "--batch-sizes", default=None, help="comma-separated max_batch values (1,2,4,8)"
    )
    parser.add_argument(
        "--backlog", type=int, default=None, help="jobs queued per backlog run (16)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats; median (3)")
    parser.add_argument(
        "--quick", action="store_true", help="tiny model, 64², few steps, one repeat (CI smoke)"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the UNet of the default engine (CUDA only, as POKEMON_COMPILE=on)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="where the random SD 1.x checkpoint is built (default ~/.cache/pokemon-bot-bench)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log the project's INFO lines")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace, device: str) -> Plan:
    """Fill the defaults: tiny/64² on CPU or --quick, SD 1.x/512² on CUDA."""
    from bot.settings import Settings

    fields = Settings.model_fields
    default_steps = int(fields["pokemon_steps"].default)
    model = args.model
    if model is None:
        model = str(TINY_MODEL) if args.quick or not device.startswith("cuda") else SD1X
    size = args.size if args.size is not None else (512 if model == SD1X else 64)
    if size <= 0 or size % 8:
        raise BenchError(f"--size must be a positive multiple of 8, not {size}")
    if args.batch_sizes:
        try:
            batch_sizes = tuple(int(b) for b in args.batch_sizes.split(",") if b.strip())
        except ValueError:
            raise BenchError(
                f"--batch-sizes must be integers like 1,2,4,8, not {args.batch_sizes!r}"
            ) from None
    else:
        batch_sizes = BATCH_SIZES
    if not batch_sizes or min(batch_sizes) < 1:
        raise BenchError("--batch-sizes must be positive integers")
    plan = Plan(
        device=device,
        model=model,
        size=size,
        steps=_given(args.steps, 2 if args.quick else default_steps),
        card_steps=_given(args.card_steps, 3 if args.quick else CARD_STEPS),
        scheduler=str(fields["pokemon_scheduler"].default),
        guidance=float(fields["pokemon_guidance"].default),
        batch_sizes=batch_sizes,
        backlog=_given(args.backlog, max(batch_sizes) if args.quick else 2 * max(batch_sizes)),
        repeats=_given(args.repeats, 1 if args.quick else 3),
        scheduler_steps=20 if args.quick else CARD_STEPS,
        scheduler_repeats=2 if args.quick else 5,
        quick=args.quick,
        cache=args.cache or _default_cache(),
        compile=args.compile,
    )
    for name in ("steps", "card_steps", "backlog", "repeats"):
        if getattr(plan, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be at least 1")
    return plan


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pokemon-bot-bench"


class BenchError(Exception):
    """Bad input or an unusable machine: printed as one line, exit status 2."""


def pick_device(choice: str) -> str:
    import torch

    choice = choice.strip().lower()
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"--device {choice}: CUDA is not available on this machine")
    if choice != "cpu" and not choice.startswith("cuda"):
        raise BenchError(f"--device must be auto, cpu, cuda or cuda:N, not {choice!r}")
    return choice


# ---- measuring --------------------------------------------------------------------------------


def _requests(plan: Plan, *, scheduler: str, steps: int, count: int, seed: int = 0) -> list[Any]:
    from generation.types import GenerationRequest

    return [
        GenerationRequest(
            prompt=PROMPT,
            seed=seed + i,
            steps=steps,
            guidance=plan.guidance,
            height=plan.size,
            width=plan.size,
            scheduler=scheduler,
        )
        for i in range(count)
    ]


@contextlib.contextmanager
def _autocast(device: str, enabled: bool) -> Iterator[None]:
    """The model card's `with autocast("cuda")`: fp32 weights, fp16 matmuls and convolutions."""
    if not enabled:
        yield
        return
    import torch

    with torch.autocast("cuda"):
        yield


def _outcome(entry: Any) -> str:
    return "ok" if not isinstance(entry, BaseException) else str(getattr(entry, "code", "error"))


@dataclass(frozen=True, slots=True)
class Variant:
    """One single-image configuration; `lms` is the LMS instance the engine runs for it."""

    name: str
    scheduler: str
    steps: int
    lms: Any = None
    lms_label: str | None = None


def measure_single(
    engine: Any, plan: Plan, variants: Sequence[Variant], *, autocast: bool = False
) -> dict[str, dict[str, Any]]:
    """One image per `engine.generate` call, for each variant: warm up once, then the median.

    The variants take turns within each repeat, so load from other processes on a shared
    machine hits them alike.
    """
    walls: dict[str, list[float]] = {v.name: [] for v in variants}
    timings: dict[str, dict[str, list[float]]] = {v.name: {} for v in variants}
    outcomes: dict[str, Counter[str]] = {v.name: Counter() for v in variants}
    peaks: dict[str, int] = {}
    with _autocast(plan.device, autocast):
        for variant in variants:  # warm-up: allocator, kernels, scheduler tables
            _prepare(engine, variant)
            engine.generate(
                _requests(plan, scheduler=variant.scheduler, steps=variant.steps, count=1)
            )
        for repeat in range(plan.repeats):
            for variant in variants:
                _prepare(engine, variant)
                (request,) = _requests(
                    plan, scheduler=variant.scheduler, steps=variant.steps, count=1, seed=repeat + 1
                )
                reset_peak_memory(plan.device)
                started = time.perf_counter()
                (entry,) = engine.generate([request])
                walls[variant.name].append(time.perf_counter() - started)
                peaks[variant.name] = max(
                    peaks.get(variant.name, 0), peak_memory_bytes(plan.device)
                )
                outcomes[variant.name][_outcome(entry)] += 1
                for key, value in getattr(entry, "timings", {}).items():
                    timings[variant.name].setdefault(key, []).append(value)
    results = {}
    for variant in variants:
        seconds = median(walls[variant.name])
        denoise = median(timings[variant.name].get("denoise", []))
        results[variant.name] = {
            "scheduler": variant.scheduler,
            "lms": variant.lms_label,
            "steps": variant.steps,
            "dtype": engine.dtype,
            "autocast": autocast,
            "size": plan.size,
            "repeats": plan.repeats,
            "s_per_image": seconds,
            "images_per_s": 1.0 / seconds,
            "s_per_step": denoise / variant.steps,
            "peak_memory_bytes": peaks[variant.name],
            "timings": {key: median(values) for key, values in timings[variant.name].items()},
            "outcomes": dict(outcomes[variant.name]),
        }
    return results


def _prepare(engine: Any, variant: Variant) -> None:
    """Install the variant's LMS instance before a call."""
    if variant.lms is not None:
        engine.use_scheduler("lms", variant.lms)


def card_variants(engine: Any, steps: int) -> list[Variant]:
    """(a) with diffusers' own LMS, as the model card runs it, and (a') with the project's."""
    from diffusers import LMSDiscreteScheduler

    from generation.schedulers import MODEL_CARD_BETAS, make_scheduler

    config = dict(getattr(engine, "_scheduler_config", None) or {})
    prediction_type = config.get("prediction_type") or "epsilon"
    stock = LMSDiscreteScheduler(**MODEL_CARD_BETAS, prediction_type=prediction_type)
    return [
        Variant("card", "lms", steps, stock, "diffusers LMSDiscreteScheduler"),
        Variant("card_cached_lms", "lms", steps, make_scheduler("lms", config), "project (cached)"),
    ]


async def _backlog_once(
    engine: Any, plan: Plan, max_batch: int, jobs: int, first_id: int
) -> tuple[float, Counter[str], Counter[int]]:
    """Queue `jobs` jobs at once on a fresh worker; seconds until the last one is done."""
    from generation.worker import THREAD_NAME, GenerationWorker

    worker = GenerationWorker(engine, queue_size=jobs, max_batch=max_batch)
    worker.start()
    threads = [t.native_id for t in threading.enumerate() if t.name == THREAD_NAME]
    requests = _requests(
        plan, scheduler=plan.scheduler, steps=plan.steps, count=jobs, seed=first_id
    )
    try:
        started = time.perf_counter()
        # Eight users, round-robin: the worker's fairness and batching both take part.
        handles = [
            worker.submit(first_id + i, 1000 + i % 8, request) for i, request in enumerate(requests)
        ]
        results = await asyncio.gather(*(h.future for h in handles), return_exceptions=True)
        wall = time.perf_counter() - started
    finally:
        await worker.stop(timeout=60.0)
        wait_ended(threads)  # its OpenMP team gone before the next worker's thread starts
    sizes = Counter(
        getattr(r, "batch_size", 0) for r in results if not isinstance(r, BaseException)
    )
    return wall, Counter(_outcome(r) for r in results), sizes


def measure_backlog(engine: Any, plan: Plan, max_batch: int) -> dict[str, Any]:
    """Throughput of a queued backlog with `max_batch` (warm-up run first, median of repeats)."""
    jobs = max(plan.backlog, max_batch)
    next_id = max_batch * 1_000_000
    # Warm-up with one full batch: new batch shapes allocate and pick kernels.
    asyncio.run(_backlog_once(engine, plan, max_batch, max_batch, next_id))
    reset_peak_memory(plan.device)
    walls: list[float] = []
    outcomes: Counter[str] = Counter()
    sizes: Counter[int] = Counter()
    for repeat in range(plan.repeats):
        wall, counted, batch_sizes = asyncio.run(
            _backlog_once(engine, plan, max_batch, jobs, next_id + (repeat + 1) * 10_000)
        )
        walls.append(wall)
        outcomes.update(counted)
        sizes.update(batch_sizes)
    peak = peak_memory_bytes(plan.device)
    wall = median(walls)
    return {
        "max_batch": max_batch,
        "jobs": jobs,
        "steps": plan.steps,
        "scheduler": plan.scheduler,
        "repeats": plan.repeats,
        "wall_s": wall,
        "images_per_s": jobs / wall,
        "s_per_image": wall / jobs,
        "peak_memory_bytes": peak,
        "outcomes": dict(outcomes),
        "batch_sizes_seen": {str(k): v for k, v in sorted(sizes.items())},
    }


def measure_second_team(engine: Any, plan: Plan) -> dict[str, Any]:
    """(b) alone, and while another live thread owns an OpenMP team: what torch on a second
    thread (the main thread, an executor's) would cost each picture. CPU only."""

    def call(seed: int) -> None:
        requests = _requests(plan, scheduler=plan.scheduler, steps=plan.steps, count=1, seed=seed)
        engine.generate(requests)

    return second_team_cost(call, plan.repeats)


def measure_scheduler(steps: int, repeats: int) -> dict[str, Any]:
    """LMS per-step cost on CPU: diffusers' `LMSDiscreteScheduler.step` vs. the project's.

    Both get the same 512²-sized latents and model outputs; outputs must be bit-identical.
    """
    import torch
    from diffusers import LMSDiscreteScheduler

    from generation.schedulers import MODEL_CARD_BETAS, make_scheduler

    generator = torch.Generator("cpu").manual_seed(0)
    shape = (1, 4, 64, 64)  # the latent of a 512² image
    start = torch.randn(shape, generator=generator)
    outputs = [torch.randn(shape, generator=generator) for _ in range(steps)]

    def run(scheduler: Any) -> tuple[float, float, list[Any]]:
        began = time.perf_counter()
        scheduler.set_timesteps(steps)
        set_s = time.perf_counter() - began
        sample = start * scheduler.init_noise_sigma
        stepping = 0.0
        samples = []
        for index, timestep in enumerate(scheduler.timesteps):
            scheduler.scale_model_input(sample, timestep)  # the pipeline calls it; not timed
            began = time.perf_counter()
            sample = scheduler.step(outputs[index], timestep, sample).prev_sample
            stepping += time.perf_counter() - began
            samples.append(sample)
        return set_s, stepping / steps, samples

    fresh = make_scheduler("lms", {})
    began = time.perf_counter()
    fresh.set_timesteps(steps)  # first job at this step count: integrates the whole table
    first_set = time.perf_counter() - began

    fast = make_scheduler("lms", {})
    run(fast)  # warm-up (and fills its table)
    run(LMSDiscreteScheduler(**MODEL_CARD_BETAS))
    stock_steps, fast_steps, stock_sets, fast_sets = [], [], [], []
    identical = True
    for _ in range(repeats):
        stock_set, stock_step, stock_samples = run(LMSDiscreteScheduler(**MODEL_CARD_BETAS))
        fast_set, fast_step, fast_samples = run(fast)
        stock_steps.append(stock_step)
        fast_steps.append(fast_step)
        stock_sets.append(stock_set)
        fast_sets.append(fast_set)
        identical = identical and all(
            torch.equal(a, b) for a, b in zip(stock_samples, fast_samples, strict=True)
        )
    stock_ms, fast_ms = median(stock_steps) * 1e3, median(fast_steps) * 1e3
    return {
        "steps": steps,
        "repeats": repeats,
        "latent_shape": list(shape),
        "stock_ms_per_step": stock_ms,
        "cached_ms_per_step": fast_ms,
        "speedup": stock_ms / fast_ms if fast_ms else None,
        "stock_set_timesteps_ms": median(stock_sets) * 1e3,
        "cached_set_timesteps_first_ms": first_set * 1e3,
        "cached_set_timesteps_ms": median(fast_sets) * 1e3,
        "identical": identical,
    }


# ---- engines ----------------------------------------------------------------------------------


def load(model: Path, plan: Plan, *, card: bool = False) -> Any:
    """An Engine through the project's loader; `card` gives fp32 weights (the model card's)."""

    from generation.loader import load_engine

    # The card's engine is never compiled (the model card does not compile) and keeps fp32
    # weights on CUDA, run under autocast by measure_single.
    return load_engine(
        model,
        device=plan.device,
        safety_checker=True,
        compile=plan.compile and not card,
        dtype="float32" if card else None,
    )


def release(engine: Any, device: str) -> None:
    del engine
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


# ---- the run ----------------------------------------------------------------------------------


def run(plan: Plan) -> dict[str, Any]:
    """Every measurement of `plan`; the JSON document."""
    if plan.model == SD1X:
        model = call_on_own_thread(
            build_sd1x, plan.cache / "sd1x-random", device=plan.device, name="bench-build"
        )
    else:
        model = Path(plan.model)
    results: dict[str, Any] = {
        "benchmark": "generation",
        "machine": machine(plan.device),
        "config": {
            "device": plan.device,
            "model": plan.model,
            "size": plan.size,
            "steps": plan.steps,
            "card_steps": plan.card_steps,
            "scheduler": plan.scheduler,
            "guidance": plan.guidance,
            "batch_sizes": list(plan.batch_sizes),
            "backlog": plan.backlog,
            "repeats": plan.repeats,
            "quick": plan.quick,
            "compile": plan.compile,
        },
        "peak_memory_source": peak_memory_source(plan.device),
    }
    # Torch runs as in the bot: never on this thread, each part on a thread that ends first.
    log.info("LMS scheduler overhead (%s steps)…", plan.scheduler_steps)
    results["scheduler_overhead"] = call_on_own_thread(
        measure_scheduler, plan.scheduler_steps, plan.scheduler_repeats, name="bench-scheduler"
    )
    cuda = plan.device.startswith("cuda")
    default = Variant("default", plan.scheduler, plan.steps)

    def singles(engine: Any, *, card_only: bool = False) -> dict[str, dict[str, Any]]:
        card = card_variants(engine, plan.card_steps)
        if card_only:  # CUDA: the card's fp32 engine under autocast
            steps, dtype = plan.card_steps, engine.dtype
            log.info("(a) model card: lms, %s steps, %s + autocast…", steps, dtype)
            return measure_single(engine, plan, card, autocast=True)
        log.info("(b) default: %s, %s steps, %s…", plan.scheduler, plan.steps, engine.dtype)
        # On CPU the same fp32 engine serves (a) and (b): measured in turns.
        return measure_single(engine, plan, [default] if cuda else [*card, default])

    engine = call_on_own_thread(load, model, plan, name="model-load")
    results.update(call_on_own_thread(singles, engine, name="bench-generation"))
    if not cuda:
        log.info("(b) alone and beside a second thread's OpenMP team…")
        results["second_team"] = call_on_own_thread(
            measure_second_team, engine, plan, name="bench-generation"
        )
    results["batches"] = []
    for max_batch in plan.batch_sizes:
        log.info("(c) backlog of %s jobs, max_batch=%s…", max(plan.backlog, max_batch), max_batch)
        results["batches"].append(measure_backlog(engine, plan, max_batch))
    if cuda:
        release(engine, plan.device)
        engine = call_on_own_thread(load, model, plan, card=True, name="model-load")
        results.update(call_on_own_thread(singles, engine, card_only=True, name="bench-generation"))
    release(engine, plan.device)

    best = max(results["batches"], key=lambda row: row["images_per_s"])
    card_rate = results["card"]["images_per_s"]
    results["summary"] = {
        "default_s_per_image": results["default"]["s_per_image"],
        "best_backlog_images_per_s": best["images_per_s"],
        "best_max_batch": best["max_batch"],
        "speedup_vs_card": best["images_per_s"] / card_rate,
        "default_speedup_vs_card": results["default"]["images_per_s"] / card_rate,
        # The issue-22 check: through the worker, one at a time, as fast as a direct call.
        "backlog1_vs_default": next(
            (r["s_per_image"] for r in results["batches"] if r["max_batch"] == 1), float("nan")
        )
        / results["default"]["s_per_image"],
        "second_team_ratio": results.get("second_team", {}).get("ratio"),
    }
    return results


def render(results: dict[str, Any]) -> str:
    """The tables, in Markdown."""
    config = results["config"]
    header = ["config", "scheduler", "steps", "dtype", "s/image", "images/s", "peak MiB"]
    rows = []
    for key, label in (
        ("card", "(a) model card (stock LMS)"),
        ("card_cached_lms", "(a') model card, cached LMS"),
        ("default", "(b) project default"),
    ):
        row = results[key]
        dtype = row["dtype"] + (" + autocast" if row["autocast"] else "")
        rows.append(
            [label, row["scheduler"], row["steps"], dtype, row["s_per_image"],
             row["images_per_s"], mib(row["peak_memory_bytes"])]
        )  # fmt: skip
    for row in results["batches"]:
        rows.append(
            [f"(c) backlog {row['jobs']}, max_batch={row['max_batch']}", row["scheduler"],
             row["steps"], results["default"]["dtype"], row["s_per_image"], row["images_per_s"],
             mib(row["peak_memory_bytes"])]
        )  # fmt: skip
    sched = results["scheduler_overhead"]
    sched_rows = [
        ["diffusers LMSDiscreteScheduler", sched["stock_ms_per_step"], sched["stock_set_timesteps_ms"]],
        ["project CachedLMS (table cached)", sched["cached_ms_per_step"], sched["cached_set_timesteps_ms"]],
        ["project CachedLMS (first job)", None, sched["cached_set_timesteps_first_ms"]],
    ]  # fmt: skip
    summary = results["summary"]
    machine_info = results["machine"]
    return "\n".join(
        [
            f"device={config['device']} ({machine_info.get('gpu') or machine_info['cpu']}, "
            f"{machine_info['cpus']} CPUs) model={config['model']} size={config['size']}² "
            f"repeats={config['repeats']} peak memory: {results['peak_memory_source']}",
            "",
            table(rows, header),
            "",
            f"LMS scheduler on CPU, {sched['steps']} steps of a {sched['latent_shape']} latent "
            f"(identical outputs: {sched['identical']}; speed-up {sched['speedup']:.1f}×)",
            "",
            table(sched_rows, ["scheduler", "ms/step", "set_timesteps ms"]),
            "",
            f"default {summary['default_s_per_image']:.3f} s/image; best backlog "
            f"{summary['best_backlog_images_per_s']:.2f} images/s (max_batch="
            f"{summary['best_max_batch']}) = {summary['speedup_vs_card']:.1f}× the model card; "
            f"max_batch=1 through the worker costs {summary['backlog1_vs_default']:.2f}× (b)",
            *_render_second_team(results.get("second_team")),
        ]
    )


def _render_second_team(row: dict[str, Any] | None) -> list[str]:
    if row is None:
        return []
    return [
        "",
        f"(b) on one thread, alone and while another thread owns an OpenMP team (medians of "
        f"{row['rounds']}, in turns; {row['omp_env'] or 'no OMP_/GOMP_ settings'}):",
        "",
        table(
            [["alone", row["alone_s"], 1.0], ["beside a second team", row["second_team_s"],
             row["ratio"]]],
            ["(b) s/image", "s", "×"],
        ),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 on success, 2 on bad input or an unusable model/device."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The worker logs a line per job; keep the bench's own progress lines only.
    for name in ("generation", "bot", "diffusers", "transformers"):
        logging.getLogger(name).setLevel(logging.INFO if args.verbose else logging.WARNING)
    from generation.errors import ModelLoadError

    try:
        plan = make_plan(args, pick_device(args.device))
        results = run(plan)
    except (BenchError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render(results))
    if args.json is not None:
        write_json(args.json, results)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
