"""The GPU check in one run: wheels, the gpu-marked tests and the 512² benchmarks, time-guarded.

    bash bench/gpu/run.sh              # on the CUDA machine (runs this file, logs to the out dir)
    bash bench/gpu/run.sh --dry-run    # here, on CPU: every phase at tiny size, no install

Phases, in order (each timed and in its own try; the results are rewritten after each one,
and a watchdog writes what there is and exits when --budget runs out):

    install    the carried wheels in .whl/ (bench/gpu/install.py); not in a dry run
    env        versions, the imports the project needs, the GPU
    build      the random-weight SD 1.x checkpoint (bench/sd1x-config; dry run: tiny configs)
    eager      POKEMON_COMPILE=off: Settings' scheduler and steps (dpmpp-2m, 25), fp16, and
               the pictures of three seeds
    backlog-N  a backlog of 16 jobs through a real GenerationWorker, eager, max_batch N = 1, 2,
               4, 8, 12, 16
    fast       the default on CUDA (POKEMON_COMPILE=auto, generation.fastpath): compiled for
               one picture and each --fast-batches batch at 512², the same seeds compared
               with eager's pictures, and the compiled backlogs (bench/gpu/fast.py)
    card       the model card: LMS, 100 steps, fp32 weights under autocast (stock and cached LMS)
    tests      python -m pytest -m gpu tests
    plain      plain diffusers StableDiffusionPipeline.from_pretrained in fp16 with the
               checkpoint's scheduler (LMS) and diffusers' default steps (50)

Outputs in --out (run.sh: $OUT, else bench/results/gpu-<date>/): gpu-results.json,
gpu-results.md, gpu-<date>-<gpu>.json (the figures to commit under bench/results/) and
run.sh's gpu-run.log. The short table is printed last.
Exit status: 0 all ran, 1 a phase failed, 2 bad arguments, 3 the budget ran out.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/gpu/ is first on sys.path: put the repository root in front.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import contextlib
import dataclasses
import datetime
import inspect
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import TINY_MODEL, mib, table, write_json
from bench.gpu import fast

log = logging.getLogger("bench.gpu")

ROOT = Path(__file__).resolve().parents[2]
JSON_NAME = "gpu-results.json"
MARKDOWN_NAME = "gpu-results.md"
REAL_BUDGET_S = 450.0  # run.sh's hard stop is 500 s; the device call's limit should be ≥ 540 s
DRY_BUDGET_S = 150.0
TESTS_CAP_S = 150.0
# Targets for the H100-class GPU (issue 20, docs/PERFORMANCE.md).
TARGETS = {
    "default_s_per_image_max": 0.30,
    "best_backlog_images_per_s_min": 8.0,
    "best_backlog_speedup_vs_card_min": 6.0,
}
# A phase starts only with this much of the budget left (rough costs on an H200).
MIN_LEFT_S = {"build": 60.0, "eager": 40.0, "backlog": 15.0, "fast": 120.0, "card": 40.0,
              "tests": 60.0, "plain": 30.0}  # fmt: skip
CHILDREN: set[subprocess.Popen[Any]] = set()  # running subprocesses, ended by the watchdog
PHASES = ("install", "env", "build", "eager", "backlog", "fast", "card", "tests", "plain")
BATCH_SIZES = (1, 2, 4, 8, 12, 16)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """What one run does: the full-size run on CUDA, or the tiny dry run on CPU."""

    dry_run: bool
    device: str
    size: int
    repeats: int  # single-image configurations: warm-up, then this many timed calls
    card_repeats: int  # the card's 100-step images are the slowest: fewer of them
    backlog: int
    backlog_repeats: int
    batch_sizes: tuple[int, ...]
    steps: int | None  # None: Settings' POKEMON_STEPS
    card_steps: int | None  # None: the model card's 100
    plain_steps: int | None  # None: diffusers' default
    cache: Path
    budget: float
    skip: dict[str, str]  # phase (or group) → why it is skipped
    min_left: dict[str, float]
    fast_options: Any  # generation.fastpath.FastPathOptions
    fast_batches: tuple[int, ...]  # compiled backlogs' max_batch
    commit: str


def make_settings(args: argparse.Namespace) -> Settings:
    names = {s.strip() for s in (args.skip or "").split(",") if s.strip()}
    unknown = names - set(PHASES)
    if unknown:
        raise UsageError(f"--skip takes {', '.join(PHASES)}, not {', '.join(sorted(unknown))}")
    skip = dict.fromkeys(names, "skipped by --skip")
    from generation.fastpath import FastPathOptions

    try:
        options = FastPathOptions.parse(args.fast or "")
        batches = tuple(int(b) for b in args.fast_batches.split(",") if b.strip()) if (
            args.fast_batches) else None  # fmt: skip
    except ValueError as exc:
        raise UsageError(f"--fast / --fast-batches: {exc}") from None
    commit = os.environ.get("GPU_CHECK_COMMIT") or "unknown"
    if args.dry_run:
        return Settings(
            dry_run=True,
            device="cpu",
            size=64,
            repeats=1,
            card_repeats=1,
            backlog=8,
            backlog_repeats=1,
            batch_sizes=(1, 2, 4, 8),
            steps=2,
            card_steps=2,
            plain_steps=2,
            cache=args.cache or Path(tempfile.mkdtemp(prefix="gpu-check-")),
            budget=args.budget or DRY_BUDGET_S,
            skip={**skip, "install": "dry run: nothing to install"},
            min_left=dict.fromkeys(PHASES, 0.0),
            # The same code path on the CPU: dynamo traces, guards and gates as on a GPU.
            fast_options=dataclasses.replace(options, backend="eager"),
            fast_batches=batches or fast.DRY_FAST_BACKLOG_BATCHES,
            commit=commit,
        )
    return Settings(
        dry_run=False,
        device="cuda",
        size=512,
        repeats=3,
        card_repeats=2,
        backlog=16,
        backlog_repeats=1,
        batch_sizes=BATCH_SIZES,
        steps=None,
        card_steps=None,
        plain_steps=None,
        cache=args.cache or Path("/tmp/pokemon-bench-cache"),
        budget=args.budget or REAL_BUDGET_S,
        skip=skip,
        min_left=MIN_LEFT_S,
        fast_options=options,
        fast_batches=batches or fast.FAST_BACKLOG_BATCHES,
        commit=commit,
    )


class UsageError(Exception):
    """Bad arguments: one line, exit status 2."""


class PhaseFailed(Exception):
    """A phase that finished with a result but failed (e.g. tests that failed)."""

    def __init__(self, note: str, value: Any) -> None:
        super().__init__(note)
        self.value = value


# ---- the report, rewritten after every phase --------------------------------------------------


class Report:
    def __init__(self, out: Path, settings: Settings) -> None:
        self.out = out
        self.settings = settings
        self.started = time.monotonic()
        self.lock = threading.RLock()
        self.current: str | None = None
        self.current_started = 0.0
        self.scratch: Path | None = None  # removed at the end, also when the budget runs out
        self.data: dict[str, Any] = {
            "benchmark": "gpu-check",
            "started_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "dry_run": settings.dry_run,
            "device": settings.device,
            "budget_s": settings.budget,
            "complete": False,
            "aborted": None,
            "phases": {},
            "machine": None,
            "tests": None,
            "results": {},
            "summary": {},
        }

    def left(self) -> float:
        return self.settings.budget - (time.monotonic() - self.started)

    def phase(self, name: str, fn: Callable[[], Any], *, group: str | None = None) -> Any:
        """Run one phase unless skipped or out of time; record status, seconds and result."""
        kind = group or name
        need = self.settings.min_left.get(kind, 0.0)
        if kind in self.settings.skip:
            self._record(name, "skipped", 0.0, self.settings.skip[kind])
            return None
        if self.left() < need:
            self._record(name, "skipped", 0.0, f"{self.left():.0f}s left, needs {need:.0f}s")
            return None
        log.info("── phase %s (%.0fs of the budget left)", name, self.left())
        started = time.monotonic()
        with self.lock:
            self.current, self.current_started = name, started
            self.data["phases"][name] = {"status": "running", "seconds": None, "note": None}
        status, note, value = "ok", None, None
        try:
            value = fn()
        except PhaseFailed as exc:
            status, note, value = "failed", str(exc), exc.value
        except Exception as exc:
            status, note = "failed", f"{type(exc).__name__}: {_one_line(exc)}"
            traceback.print_exc()
        with self.lock:
            self.current = None
            self._record(name, status, time.monotonic() - started, note)
        if status == "failed":
            log.error("phase %s failed: %s", name, note)
        return value

    def _record(self, name: str, status: str, seconds: float, note: str | None) -> None:
        with self.lock:
            self.data["phases"][name] = {
                "status": status,
                "seconds": round(seconds, 2),
                "note": note,
            }
            self.write()

    def set(self, key: str, value: Any, *, result: bool = True) -> None:
        with self.lock:
            if result:
                self.data["results"][key] = value
            else:
                self.data[key] = value
            self.data["summary"] = safe_summary(self.data)
            self.write()

    def write(self) -> None:
        """Rewrite the JSON and the Markdown; a failure to write is printed, never raised."""
        with self.lock:
            self.data["elapsed_s"] = round(time.monotonic() - self.started, 1)
            try:
                write_json(self.out / JSON_NAME, self.data)
                (self.out / MARKDOWN_NAME).write_text(render(self.data) + "\n", encoding="utf-8")
                figures = fast.figures(self.data, self.settings.commit)
                write_json(self.out / fast.figures_name(figures), figures)
            except Exception as exc:  # a full disk or a bad value must not stop the run
                print(f"!! cannot write the results to {self.out}: {_one_line(exc)}", flush=True)

    def abort(self) -> None:
        """The watchdog: the budget is spent. Write what there is, print it, exit at once."""
        try:
            with self.lock:
                name = self.current or "between phases"
                self.data["aborted"] = f"budget of {self.settings.budget:.0f}s ran out in {name}"
                if self.current is not None:
                    self.data["phases"][self.current] = {
                        "status": "timed out",
                        "seconds": round(time.monotonic() - self.current_started, 1),
                        "note": "the budget ran out; later phases did not run",
                    }
                self.data["summary"] = safe_summary(self.data)
                self.write()
                print(f"\n!! {self.data['aborted']}: partial results written\n", flush=True)
                print(render_short(self.data), flush=True)
            for proc in list(CHILDREN):
                kill_group(proc)
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(3)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:400]


# ---- phases -----------------------------------------------------------------------------------


def phase_install(settings: Settings) -> dict[str, Any]:
    from bench.gpu.install import install

    summary = install()
    for warning in summary["warnings"]:
        log.warning("wheels: %s", warning)
    return summary


def phase_env(settings: Settings) -> dict[str, Any]:
    """Versions and imports; fails (after recording) when something the run needs is missing."""
    import importlib
    import importlib.metadata

    packages = ("torch", "diffusers", "transformers", "huggingface-hub", "safetensors",
                "numpy", "pydantic", "pydantic-settings", "discord.py", "aiosqlite", "pytest",
                "pytest-asyncio", "typing-extensions")  # fmt: skip
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    failed: dict[str, str] = {}
    for module in ("torch", "diffusers", "transformers", "pydantic_settings", "discord",
                   "aiosqlite", "pytest_asyncio", "bot.settings", "generation.loader",
                   "generation.worker", "storage"):  # fmt: skip
        try:
            importlib.import_module(module)
        except Exception as exc:
            failed[module] = f"{type(exc).__name__}: {_one_line(exc)}"
    env: dict[str, Any] = {"versions": versions, "import_errors": failed}
    try:
        import torch

        env["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            env["gpu"] = {
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 2**30, 1),
                "multiprocessors": props.multi_processor_count,
            }
    except Exception as exc:
        failed.setdefault("torch", _one_line(exc))
    try:
        from bench.common import machine

        env["machine"] = machine(settings.device)
    except Exception as exc:
        failed.setdefault("bench.common.machine", _one_line(exc))
    if failed:
        raise PhaseFailed("cannot import " + ", ".join(sorted(failed)), env)
    if settings.device.startswith("cuda") and not env.get("cuda_available"):
        raise PhaseFailed("CUDA is not available: torch sees no GPU", env)
    return env


def phase_build(settings: Settings) -> tuple[Path, Any]:
    """The checkpoint and the bench.generation Plan that measures it."""
    from bench.generation import build_sd1x

    if settings.dry_run:
        # The same build on the tiny reference's configs: the code path, in a second.
        model = build_sd1x(
            settings.cache / "tiny-random",
            config_dir=TINY_MODEL,
            tokenizer_dir=TINY_MODEL / "tokenizer",
        )
    else:
        model = build_sd1x(settings.cache / "sd1x-random", device=settings.device)
    return model, bench_plan(settings, model)


def bench_plan(settings: Settings, model: Path) -> Any:
    """A bench.generation Plan: its defaults (Settings' scheduler, steps, guidance) and ours."""
    from bench.generation import make_plan, parse_args

    argv = ["--model", str(model), "--size", str(settings.size), "--repeats",
            str(settings.repeats), "--backlog", str(settings.backlog), "--cache",
            str(settings.cache)]  # fmt: skip
    if settings.steps is not None:
        argv += ["--steps", str(settings.steps)]
    if settings.card_steps is not None:
        argv += ["--card-steps", str(settings.card_steps)]
    argv += ["--batch-sizes", ",".join(map(str, settings.batch_sizes))]
    return make_plan(parse_args(argv), settings.device)


def _timed_load(model: Path, plan: Any, *, card: bool = False) -> tuple[Any, float]:
    from bench.generation import load

    started = time.perf_counter()
    engine = load(model, plan, card=card)
    return engine, time.perf_counter() - started


def measure_default(engine: Any, plan: Any, load_s: float, name: str = "default") -> dict[str, Any]:
    from bench.generation import Variant, measure_single

    result = measure_single(engine, plan, [Variant(name, plan.scheduler, plan.steps)])[name]
    result.update(load_s=load_s, compiled=bool(getattr(engine, "compiled", False)))
    return result


def measure_card(model: Path, plan: Any) -> dict[str, Any]:
    from bench.generation import card_variants, measure_single, release

    engine, load_s = _timed_load(model, plan, card=True)
    try:
        cuda = plan.device.startswith("cuda")
        results = measure_single(
            engine, plan, card_variants(engine, plan.card_steps), autocast=cuda
        )
    finally:
        release(engine, plan.device)
    for row in results.values():
        row["load_s"] = load_s
    return results


def measure_plain(model: Path, plan: Any, steps: int | None) -> dict[str, Any]:
    """What a user would run with diffusers alone: from_pretrained, fp16, the pipeline's defaults.

    The published checkpoint's tokenizer (rinna's, saved as T5Tokenizer) and feature extractor
    (CLIPFeatureExtractor) no longer load with today's transformers, so those two are given:
    the prompt goes in as embeddings from the pipeline's own text encoder (inside the timing),
    and the feature extractor is built from its config. Everything else is diffusers' own: the
    scheduler named in the checkpoint (LMS, stock), its default steps and guidance, fp16
    weights, its default attention, PIL output and the safety checker.
    """
    import torch
    from diffusers import StableDiffusionPipeline

    from bench.common import peak_memory_bytes, reset_peak_memory
    from bench.generation import PROMPT, median, release
    from generation.hub import quiet_libraries
    from generation.loader import _load_feature_extractor
    from generation.tokenizer import RinnaTokenizer

    cuda = plan.device.startswith("cuda")
    dtype = torch.float16 if cuda else torch.float32  # fp16 matmuls are not a CPU thing
    started = time.perf_counter()
    with quiet_libraries():  # progress bars and the old config's deprecation notes
        pipe: Any = StableDiffusionPipeline.from_pretrained(
            model,
            torch_dtype=dtype,
            tokenizer=None,
            feature_extractor=_load_feature_extractor(model),
        )
    pipe.to(plan.device)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - started
    defaults = inspect.signature(pipe.__call__).parameters
    used_steps = steps if steps is not None else int(defaults["num_inference_steps"].default)
    tokenizer = RinnaTokenizer.from_folder(model / "tokenizer")
    ids = torch.tensor([tokenizer.encode(PROMPT).ids, tokenizer.encode("").ids], device=plan.device)
    options: dict[str, Any] = {"height": plan.size, "width": plan.size}
    if steps is not None:
        options["num_inference_steps"] = steps

    def once(seed: int) -> Any:
        with torch.no_grad():
            embeds = pipe.text_encoder(ids)[0]
        generator = torch.Generator(plan.device).manual_seed(seed)
        return pipe(
            prompt_embeds=embeds[:1], negative_prompt_embeds=embeds[1:], generator=generator,
            **options,
        )  # fmt: skip

    try:
        once(0)  # warm-up
        walls: list[float] = []
        peak = 0
        flagged = 0
        for repeat in range(plan.repeats):
            reset_peak_memory(plan.device)
            began = time.perf_counter()
            output = once(repeat + 1)  # PIL output: the GPU work is done when it returns
            walls.append(time.perf_counter() - began)
            peak = max(peak, peak_memory_bytes(plan.device))
            flagged += sum(bool(f) for f in (output.nsfw_content_detected or []))
        seconds = median(walls)
        return {
            "pipeline": "diffusers StableDiffusionPipeline.from_pretrained",
            "scheduler": type(pipe.scheduler).__name__,
            "steps": used_steps,
            "guidance": float(defaults["guidance_scale"].default),
            "dtype": str(dtype).removeprefix("torch."),
            "autocast": False,
            "size": plan.size,
            "repeats": plan.repeats,
            "s_per_image": seconds,
            "images_per_s": 1.0 / seconds,
            "peak_memory_bytes": peak,
            "load_s": load_s,
            "nsfw_flagged": flagged,
        }
    finally:
        release(pipe, plan.device)


def run_tests(timeout: float, paths: Sequence[str]) -> dict[str, Any]:
    """`python -m pytest -m gpu` in a subprocess (its output goes to the log); junit counts."""
    with tempfile.TemporaryDirectory(prefix="gpu-tests-") as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-m", "gpu", *paths, "-q", "-rfEs",
                   "-p", "no:cacheprovider", "--continue-on-collection-errors",
                   f"--junitxml={junit}"]  # fmt: skip
        print("$ " + " ".join(command[1:]), flush=True)
        sys.stderr.flush()
        # Its own session, so that a timeout or the watchdog ends pytest's children too.
        proc = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
        CHILDREN.add(proc)
        try:
            returncode: int | str = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            returncode = f"timed out after {timeout:.0f}s"
        finally:
            CHILDREN.discard(proc)
        result = (
            parse_junit(junit) if junit.is_file() else {"passed": [], "failed": [], "skipped": []}
        )
    result["returncode"] = returncode
    result["command"] = "python -m " + " ".join(command[2:-1])
    result["counts"] = {k: len(result[k]) for k in ("passed", "failed", "skipped")}
    # 0: all passed; 5: no test selected (e.g. none marked gpu) is not a failure of the run.
    if result["failed"] or returncode not in (0, 5):
        counts = result["counts"]
        raise PhaseFailed(
            f"pytest exit {returncode}: {counts['failed']} failed, {counts['passed']} passed",
            result,
        )
    return result


def kill_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


def parse_junit(path: Path) -> dict[str, Any]:
    passed: list[str] = []
    failed: list[dict[str, str]] = []
    skipped: list[str] = []
    properties: dict[str, dict[str, str]] = {}  # record_property: e.g. warm-up seconds
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        recorded = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        if recorded:
            properties[name] = recorded
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            message = " ".join((problem.get("message") or problem.text or "").split())
            failed.append({"test": name, "message": message[:300]})
        elif case.find("skipped") is not None:
            skip = case.find("skipped")
            reason = (skip.get("message") or "") if skip is not None else ""
            skipped.append(f"{name} ({reason[:80]})" if reason else name)
        else:
            passed.append(name)
    return {"passed": passed, "failed": failed, "skipped": skipped, "properties": properties}


# ---- the run ----------------------------------------------------------------------------------


def run(settings: Settings, report: Report) -> None:
    """Every phase in order; a phase that fails or is skipped leaves the others running."""
    if (install := report.phase("install", lambda: phase_install(settings))) is not None:
        report.set("install", install, result=False)
    if (env := report.phase("env", lambda: phase_env(settings))) is not None:
        report.set("machine", env.pop("machine", None), result=False)
        report.set("env", env, result=False)

    built = report.phase("build", lambda: phase_build(settings))
    if built is not None:
        model, plan = built
        report.set("config", _config(plan, settings), result=False)
        _run_benchmarks(settings, report, model, plan)

    if (
        tests := report.phase("tests", lambda: run_tests(_tests_timeout(report), ["tests"]))
    ) is not None:
        report.set("tests", tests, result=False)
    if built is not None:
        _run_plain(settings, report, *built)


def _run_benchmarks(settings: Settings, report: Report, model: Path, plan: Any) -> None:
    from bench.generation import measure_backlog, release

    holder: dict[str, Any] = {}

    def eager() -> dict[str, Any]:
        engine, load_s = _timed_load(model, plan)
        holder["engine"] = engine
        result = measure_default(engine, plan, load_s, name="eager")
        holder["pictures"] = fast.pictures(engine, plan)
        return result

    if (result := report.phase("eager", eager)) is not None:
        report.set("eager", result)
    backlog_plan = dataclasses.replace(plan, repeats=settings.backlog_repeats)
    rows: list[dict[str, Any]] = []
    for max_batch in plan.batch_sizes:
        if "engine" not in holder:
            break

        def backlog(max_batch: int = max_batch) -> dict[str, Any]:
            return measure_backlog(holder["engine"], backlog_plan, max_batch)

        if (row := report.phase(f"backlog-{max_batch}", backlog, group="backlog")) is not None:
            rows.append(row)
            report.set("batches", rows)
    if "engine" in holder:
        release(holder.pop("engine"), plan.device)

    def fast_path() -> dict[str, Any]:
        return fast.measure_fast(
            model, plan, options=settings.fast_options, batches=settings.fast_batches,
            eager_pictures=holder.get("pictures"), cache=settings.cache / "compile-cache",
        )  # fmt: skip

    if (result := report.phase("fast", fast_path)) is not None:
        report.set("fast", result)

    card_plan = dataclasses.replace(plan, repeats=settings.card_repeats)
    if (card := report.phase("card", lambda: measure_card(model, card_plan))) is not None:
        for key, value in card.items():
            report.set(key, value)


def _run_plain(settings: Settings, report: Report, model: Path, plan: Any) -> None:
    if (
        plain := report.phase("plain", lambda: measure_plain(model, plan, settings.plain_steps))
    ) is not None:
        report.set("plain", plain)


def _tests_timeout(report: Report) -> float:
    # Leave the plain pipeline its share when there is budget for it.
    reserve = report.settings.min_left.get("plain", 0.0)
    cap = TESTS_CAP_S if not report.settings.dry_run else 90.0
    return max(30.0, min(cap, report.left() - reserve))


def _config(plan: Any, settings: Settings) -> dict[str, Any]:
    return {
        "device": plan.device,
        "model": "random SD 1.x (bench/sd1x-config)" if not settings.dry_run else "tiny (dry run)",
        "size": plan.size,
        "steps": plan.steps,
        "card_steps": plan.card_steps,
        "plain_steps": settings.plain_steps or "diffusers default",
        "scheduler": plan.scheduler,
        "guidance": plan.guidance,
        "batch_sizes": list(plan.batch_sizes),
        "backlog": plan.backlog,
        "repeats": plan.repeats,
        "card_repeats": settings.card_repeats,
        "fast_options": fast._options(settings.fast_options),  # pyright: ignore[reportPrivateUsage]
        "fast_batches": list(settings.fast_batches),
        "commit": settings.commit,
        "backlog_repeats": settings.backlog_repeats,
        "safety_checker": True,
    }


# ---- summary and tables -----------------------------------------------------------------------


def safe_summary(data: dict[str, Any]) -> dict[str, Any]:
    try:
        return summarize(data)
    except Exception as exc:  # a partial result must not cost the others
        return {"error": f"{type(exc).__name__}: {_one_line(exc)}"}


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    results = data.get("results", {})

    def seconds(key: str) -> float | None:
        row = results.get(key)
        return row.get("s_per_image") if isinstance(row, dict) else None

    card, eager, plain, compiled = (seconds(k) for k in ("card", "eager", "plain", "fast"))
    # POKEMON_COMPILE=auto: the default is the fast path on CUDA, eager on the CPU.
    default = compiled if str(data.get("device", "")).startswith("cuda") else eager
    summary: dict[str, Any] = {
        "card_s_per_image": card,
        "plain_s_per_image": plain,
        "eager_s_per_image": eager,
        "default_s_per_image": default,
        "compiled_s_per_image": compiled,
        "max_abs_mean_diff_vs_eager": (results.get("fast") or {}).get("max_abs_mean_diff_vs_eager"),
    }
    if card and default:
        summary["default_speedup_vs_card"] = card / default
    if plain and default:
        summary["default_speedup_vs_plain"] = plain / default
    if compiled and eager:
        summary["compile_speedup"] = eager / compiled
    batches = list(results.get("batches") or [])
    compiled_backlogs = (results.get("fast") or {}).get("backlogs") or []
    if compiled_backlogs:
        summary["compiled_backlog_images_per_s"] = max(r["images_per_s"] for r in compiled_backlogs)
        batches += compiled_backlogs
    if batches:
        best = max(batches, key=lambda row: row["images_per_s"])
        summary["best_backlog_images_per_s"] = best["images_per_s"]
        summary["best_max_batch"] = best["max_batch"]
        if card:
            summary["best_backlog_speedup_vs_card"] = best["images_per_s"] * card
    if not data.get("dry_run"):
        met = {}
        if default is not None:
            met["default_s_per_image"] = default <= TARGETS["default_s_per_image_max"]
        if "best_backlog_images_per_s" in summary:
            met["best_backlog_images_per_s"] = (
                summary["best_backlog_images_per_s"] >= TARGETS["best_backlog_images_per_s_min"]
            )
        if "best_backlog_speedup_vs_card" in summary:
            met["best_backlog_speedup_vs_card"] = (
                summary["best_backlog_speedup_vs_card"]
                >= TARGETS["best_backlog_speedup_vs_card_min"]
            )
        summary["targets_met"] = met
    return summary


ROW_LABELS = (
    ("card", "(a) model card (stock LMS)"),
    ("card_cached_lms", "(a') model card, cached LMS"),
    ("plain", "plain diffusers pipeline"),
    ("eager", "(b) eager (POKEMON_COMPILE=off)"),
    ("fast", "(b) fast path (the CUDA default)"),
)
HEADER = ["config", "scheduler", "steps", "dtype", "s/image", "images/s", "peak MiB", "× card"]


def generation_rows(data: dict[str, Any]) -> list[list[Any]]:
    results = data.get("results", {})
    card = (results.get("card") or {}).get("s_per_image")
    rows: list[list[Any]] = []
    for key, label in ROW_LABELS:
        row = results.get(key)
        if not row:
            continue
        dtype = row["dtype"] + (" + autocast" if row.get("autocast") else "")
        backend = (row.get("options") or {}).get("backend")
        traced = key == "fast" and backend not in (None, "inductor")
        rows.append(
            [label + (f" (backend {backend})" if traced else ""), row["scheduler"], row["steps"], dtype, row["s_per_image"], row["images_per_s"],
             mib(row["peak_memory_bytes"]), card / row["s_per_image"] if card else None]
        )  # fmt: skip
    default_dtype = (results.get("eager") or {}).get("dtype", "")
    backlogs = [("", row) for row in results.get("batches") or []]
    backlogs += [(" + fast path", row) for row in (results.get("fast") or {}).get("backlogs") or []]
    for suffix, row in backlogs:
        rows.append(
            [f"(c) backlog {row['jobs']}, max_batch={row['max_batch']}{suffix}", row["scheduler"],
             row["steps"], default_dtype, row["s_per_image"], row["images_per_s"],
             mib(row["peak_memory_bytes"]), card / row["s_per_image"] if card else None]
        )  # fmt: skip
    return rows


def _headline(data: dict[str, Any]) -> str:
    machine_info = data.get("machine") or {}
    env = data.get("env") or {}
    gpu = (env.get("gpu") or {}).get("name") or machine_info.get("gpu") or machine_info.get("cpu")
    config = data.get("config") or {}
    state = "complete" if data.get("complete") else (data.get("aborted") or "incomplete")
    return (
        f"GPU check{' (dry run)' if data.get('dry_run') else ''}: {gpu or '?'}, "
        f"torch {machine_info.get('torch', '?')}, diffusers {machine_info.get('diffusers', '?')}; "
        f"{config.get('size', '?')}², repeats {config.get('repeats', '?')}; "
        f"{state} in {data.get('elapsed_s', 0):.0f}s of {data.get('budget_s', 0):.0f}s"
    )


def _tests_line(data: dict[str, Any]) -> str:
    tests = data.get("tests")
    if not tests:
        status = (data.get("phases", {}).get("tests") or {}).get("status", "not run")
        return f"gpu-marked tests: {status}"
    counts = tests["counts"]
    line = (
        f"gpu-marked tests: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped (pytest exit {tests['returncode']})"
    )
    return "\n".join([line, *(f"  FAILED {f['test']}: {f['message']}" for f in tests["failed"])])


def _problems(data: dict[str, Any]) -> list[str]:
    return [
        f"  {name}: {phase['status']}" + (f" — {phase['note']}" if phase.get("note") else "")
        for name, phase in data.get("phases", {}).items()
        if phase.get("status") not in ("ok", "skipped") or (
            phase.get("status") == "skipped" and not (phase.get("note") or "").startswith("dry run"))
    ]  # fmt: skip


def render(data: dict[str, Any]) -> str:
    """The Markdown report: headline, generation table, tests, summary, phases."""
    parts = [f"# {_headline(data)}", ""]
    rows = generation_rows(data)
    if rows:
        parts += [table(rows, HEADER), ""]
    parts += [_tests_line(data), ""]
    summary = {k: v for k, v in (data.get("summary") or {}).items() if v is not None}
    if summary:
        parts += ["Summary: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in summary.items()), ""]
    phase_rows = [
        [name, phase.get("status"), phase.get("seconds"), phase.get("note")]
        for name, phase in data.get("phases", {}).items()
    ]
    if phase_rows:
        parts += [table(phase_rows, ["phase", "status", "seconds", "note"])]
    return "\n".join(parts)


def render_short(data: dict[str, Any]) -> str:
    """What is printed last: headline, the generation table, tests, phases that went wrong."""
    lines = [_headline(data), ""]
    rows = generation_rows(data)
    lines += [table(rows, HEADER) if rows else "(no generation results)", "", _tests_line(data)]
    problems = _problems(data)
    if problems:
        lines += ["phases not ok:", *problems]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


# ---- entry point ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The GPU check: wheels, gpu-marked tests, 512² benchmarks (bench/gpu/README.md)."
    )
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny model, 64², 2 steps")
    parser.add_argument("--out", type=Path, default=None, help="output folder ($OUT)")
    parser.add_argument("--budget", type=float, default=None,
                        help=f"seconds before partial results are written and the run stops "
                        f"({REAL_BUDGET_S:.0f}; dry run {DRY_BUDGET_S:.0f})")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=None, help="where the checkpoint is built")
    parser.add_argument("--skip", default="", help=f"comma-separated phases: {', '.join(PHASES)}")
    parser.add_argument("--fast", default="",
                        help="generation.fastpath options, e.g. mode=max-autotune-no-cudagraphs,"
                        "epilogue_fusion=0 (FastPathOptions)")  # fmt: skip
    parser.add_argument("--fast-batches", default=None,
                        help=f"max_batch of the compiled backlogs ({','.join(map(str, fast.FAST_BACKLOG_BATCHES))})")  # fmt: skip
    return parser.parse_args(argv)


def default_out() -> Path:
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"])
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    return ROOT / "bench" / "results" / f"gpu-{stamp}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("generation", "bot", "diffusers", "transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        settings = make_settings(args)
        if args.budget is not None and args.budget <= 0:
            raise UsageError("--budget must be positive")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or default_out()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create the output folder {out}: {exc}", file=sys.stderr)
        return 2
    report = Report(out, settings)
    if settings.dry_run and args.cache is None:
        report.scratch = settings.cache
    watchdog = threading.Timer(settings.budget, report.abort)
    watchdog.daemon = True
    watchdog.start()
    log.info("GPU check%s: budget %.0fs, results in %s", " (dry run)" if settings.dry_run else "",
             settings.budget, out)  # fmt: skip
    try:
        run(settings, report)
    finally:
        if report.scratch is not None:
            shutil.rmtree(report.scratch, ignore_errors=True)
        with report.lock:
            watchdog.cancel()
            report.data["complete"] = report.data["aborted"] is None
            report.data["summary"] = safe_summary(report.data)
            report.write()
    print("\n" + render_short(report.data), flush=True)
    print(f"\nwrote {out / JSON_NAME} and {out / MARKDOWN_NAME}")
    failed = any(p.get("status") == "failed" for p in report.data["phases"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
