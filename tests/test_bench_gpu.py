"""The GPU check (bench/gpu): its dry run on CPU, its time guard, its wheel bookkeeping, and a
gpu-marked test of the worker batching on CUDA that the check runs there.

The dry run is the real script at tiny size (64², 2 steps, the tiny reference checkpoint built
through the same `build_sd1x`), so a broken phase shows up here before GPU time is spent.
Only the shape of the results is checked, never the numbers.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from bench.gpu import install, prepare
from generation.types import GeneratedImage, GenerationRequest

ROOT = Path(__file__).resolve().parents[1]
RUN_SH = ROOT / "bench" / "gpu" / "run.sh"
RUN_PY = ROOT / "bench" / "gpu" / "run.py"
SINGLE_KEYS = {"scheduler", "steps", "dtype", "autocast", "s_per_image", "images_per_s",
               "peak_memory_bytes", "load_s"}  # fmt: skip
BENCH_PHASES = ["env", "build", "eager", "backlog-1", "backlog-2", "backlog-4", "backlog-8",
                "fast", "card", "tests", "plain"]  # fmt: skip
FIGURES = {"gpu", "commit", "default_s_per_image", "compiled_s_per_image", "backlog_images_per_s",
           "card_s_per_image", "max_abs_mean_diff_vs_eager", "peak_mib"}  # fmt: skip


def _run(command: list[str], out: Path) -> subprocess.CompletedProcess[str]:
    """The GPU check's scripts on CPU (CUDA hidden), writing to `out`."""
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1",
           "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("gpu-check")
    proc = _run(["bash", str(RUN_SH), "--dry-run"], out)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return {
        "out": out,
        "stdout": proc.stdout,
        "data": json.loads((out / "gpu-results.json").read_text()),
    }


def test_dry_run_runs_every_phase_and_skips_only_the_install(dry_run: dict[str, Any]) -> None:
    phases = dry_run["data"]["phases"]
    assert list(phases) == ["install", *BENCH_PHASES]
    assert phases["install"]["status"] == "skipped"
    assert {name: phases[name]["status"] for name in BENCH_PHASES} == dict.fromkeys(
        BENCH_PHASES, "ok"
    )
    assert dry_run["data"]["complete"] is True
    assert dry_run["data"]["aborted"] is None


def test_dry_run_reports_every_configuration_of_the_real_run(dry_run: dict[str, Any]) -> None:
    data = dry_run["data"]
    results = data["results"]
    for name in ("card", "card_cached_lms", "plain", "eager", "fast"):
        assert results[name].keys() >= SINGLE_KEYS, name
    assert results["card"]["lms"] == "diffusers LMSDiscreteScheduler"
    assert results["card"]["dtype"] == "float32"
    assert results["eager"]["scheduler"] == "dpmpp-2m"  # the settings' default
    assert results["plain"]["scheduler"] == "LMSDiscreteScheduler"  # the checkpoint's own
    assert results["plain"]["pipeline"].startswith("diffusers StableDiffusionPipeline")
    # The fast path ran for real through dynamo (its eager backend on the CPU): warmed up,
    # measured, its pictures compared with the eager phase's for the same seeds.
    fast = results["fast"]
    assert fast["compiled"] is True
    assert fast["options"]["backend"] == "eager"
    assert fast["warmup_s"] > 0
    assert len(fast["mean_abs_diff_vs_eager"]) == 3
    assert fast["max_abs_mean_diff_vs_eager"] <= 2 / 255
    assert [row["max_batch"] for row in fast["backlogs"]] == [1]
    assert fast["backlogs"][0]["outcomes"] == {"ok": fast["backlogs"][0]["jobs"]}
    batches = results["batches"]
    assert [row["max_batch"] for row in batches] == [1, 2, 4, 8]
    for row in batches:
        assert row["outcomes"] == {"ok": row["jobs"]}  # every queued job came back as an image
    assert data["config"]["size"] == 64
    assert data["config"]["steps"] == 2
    assert {"card_s_per_image", "default_speedup_vs_card", "default_speedup_vs_plain",
            "compile_speedup", "best_backlog_images_per_s", "best_max_batch",
            "best_backlog_speedup_vs_card", "eager_s_per_image",
            "max_abs_mean_diff_vs_eager"} <= data["summary"].keys()  # fmt: skip
    # POKEMON_COMPILE=auto is eager on the CPU: the default is the eager row there.
    assert data["summary"]["default_s_per_image"] == results["eager"]["s_per_image"]
    assert data["env"]["import_errors"] == {}
    assert data["env"]["versions"]["diffusers"]


def test_dry_run_runs_the_gpu_marked_tests_and_counts_them(dry_run: dict[str, Any]) -> None:
    tests = dry_run["data"]["tests"]
    assert tests["command"].startswith("python -m pytest -m gpu tests")
    assert tests["returncode"] == 0
    assert tests["counts"]["failed"] == 0
    # Without CUDA every gpu-marked test is collected and skipped, this file's among them.
    assert any("test_bench_gpu" in name for name in tests["skipped"])
    assert tests["counts"]["skipped"] >= 4


def test_dry_run_writes_four_files_and_prints_the_table_last(dry_run: dict[str, Any]) -> None:
    out = dry_run["out"]
    figures_file = f"gpu-{dry_run['data']['started_utc'][:10].replace('-', '')}-cpu-dry-run.json"
    assert sorted(p.name for p in out.iterdir()) == [
        figures_file,
        "gpu-results.json",
        "gpu-results.md",
        "gpu-run.log",
    ]
    markdown = (out / "gpu-results.md").read_text()
    assert "| (b) eager (POKEMON_COMPILE=off)" in markdown
    assert "| (b) fast path (the CUDA default) (backend eager)" in markdown
    assert "| (c) backlog 8, max_batch=1 + fast path" in markdown
    assert "| plain diffusers pipeline" in markdown
    assert "| (c) backlog 8, max_batch=8" in markdown
    assert "| phase" in markdown
    tail = dry_run["stdout"][dry_run["stdout"].rindex("GPU check (dry run)") :]
    assert "| (a) model card (stock LMS)" in tail
    assert "gpu-marked tests:" in tail
    assert "exit status 0" in tail
    assert "| (b) eager (POKEMON_COMPILE=off)" in (out / "gpu-run.log").read_text()


def test_dry_run_figures_name_the_gpu_the_commit_and_the_headline_numbers(
    dry_run: dict[str, Any],
) -> None:
    (path,) = [p for p in dry_run["out"].iterdir() if p.name.endswith("-cpu-dry-run.json")]
    figures = json.loads(path.read_text())
    assert figures.keys() >= FIGURES
    assert figures["gpu"] == "cpu (dry run)"
    assert figures["commit"] == os.environ.get("GPU_CHECK_COMMIT", _head())
    results = dry_run["data"]["results"]
    assert figures["default_s_per_image"] == results["eager"]["s_per_image"]
    assert figures["compiled_s_per_image"] == results["fast"]["s_per_image"]
    best = max(results["batches"] + results["fast"]["backlogs"], key=lambda r: r["images_per_s"])
    assert figures["backlog_images_per_s"] == best["images_per_s"]
    assert figures["card_s_per_image"] == results["card"]["s_per_image"]
    assert figures["max_abs_mean_diff_vs_eager"] == results["fast"]["max_abs_mean_diff_vs_eager"]
    assert figures["peak_mib"] > 0


def _head() -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "unknown"


def test_budget_running_out_writes_partial_results_and_exits_3(tmp_path: Path) -> None:
    proc = _run(
        [sys.executable, str(RUN_PY), "--dry-run", "--budget", "3", "--out", str(tmp_path)],
        tmp_path,
    )
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-2000:]
    data = json.loads((tmp_path / "gpu-results.json").read_text())
    assert data["complete"] is False
    assert data["aborted"].startswith("budget of 3s ran out")
    statuses = [phase["status"] for phase in data["phases"].values()]
    assert statuses.count("timed out") <= 1
    assert "plain" not in data["phases"]  # the last phase never started
    assert (tmp_path / "gpu-results.md").read_text().startswith("# GPU check (dry run)")
    assert "partial results written" in proc.stdout


def test_unknown_phase_to_skip_is_one_line(tmp_path: Path) -> None:
    proc = _run([sys.executable, str(RUN_PY), "--dry-run", "--skip", "nothing"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --skip takes install, env, build, eager, backlog, fast, card, tests, "
        "plain, not nothing"
    ]


def test_junit_properties_come_back_with_the_test_counts(tmp_path: Path) -> None:
    """A gpu test's `record_property` (the restart's warm-up seconds) reaches the results."""
    from bench.gpu.run import parse_junit

    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase classname="t" name="restart"><properties>'
        '<property name="restart_warmup_s" value="3.5"/></properties></testcase>'
        '<testcase classname="t" name="other"/></testsuite></testsuites>'
    )
    parsed = parse_junit(junit)
    assert parsed["passed"] == ["t::restart", "t::other"]
    assert parsed["properties"] == {"t::restart": {"restart_warmup_s": "3.5"}}


# ---- the wheels -------------------------------------------------------------------------------


def _wheel(folder: Path, name: str, version: str, *requires: str) -> Path:
    """A minimal pure-Python wheel that pip installs, with the METADATA the scripts read."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "",
        f"{info}/METADATA": "\n".join(lines) + "\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{file},," for file in [*files, f"{info}/RECORD"]]
    with zipfile.ZipFile(path, "w") as archive:
        for file, text in files.items():
            archive.writestr(file, text)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def test_prepare_check_names_missing_needs_wrong_versions_and_duplicates(tmp_path: Path) -> None:
    _wheel(
        tmp_path, "alpha", "1.0", "beta>=2", "gamma", "numpy>=99", 'windowsonly; os_name == "nt"'
    )
    _wheel(tmp_path, "beta", "1.5")
    _wheel(tmp_path, "beta", "2.1")
    problems = prepare.check(tmp_path, {"alpha": "1.0", "beta": "2.1", "delta": "3"})
    assert "two versions of beta: 1.5 and 2.1" in problems
    assert "delta==3 is missing from " + str(tmp_path) in problems
    assert "alpha needs gamma, neither carried nor there" in problems
    # numpy is on the CUDA image at a recorded version, too old for this need.
    assert any(p.startswith("alpha needs numpy>=99") for p in problems)
    assert not any("windowsonly" in p for p in problems)  # not needed on Linux


def test_prepare_check_accepts_needs_met_by_carried_wheels_or_the_image_and_pip_installs_them(
    tmp_path: Path,
) -> None:
    _wheel(tmp_path, "alpha", "1.0", "beta>=2", "torch", "huggingface-hub>=1.0,<2")
    _wheel(tmp_path, "beta", "2.1")
    assert prepare.check(tmp_path, {"alpha": "1.0", "beta": "2.1"}) == []


def test_install_plan_keeps_the_machines_own_newer_packages(tmp_path: Path) -> None:
    here = install.installed_version("pytest")
    assert here is not None
    missing = _wheel(tmp_path, "surely_not_installed_pkg", "1.0")
    older = _wheel(tmp_path, "typing_extensions", "3.0.0")  # older than any installed here
    same = _wheel(tmp_path, "pytest", here)
    chosen, kept = install.plan(tmp_path)
    assert chosen == [missing]
    assert kept == {"typing-extensions": install.installed_version("typing_extensions"),
                    "pytest": here}  # fmt: skip
    assert older.exists()
    assert same.exists()


# ---- on CUDA (run by the GPU check) -----------------------------------------------------------


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)), dtype=np.float64)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
async def test_worker_batches_jobs_on_cuda_and_each_matches_the_job_alone(tiny_model: Path) -> None:
    from generation.loader import load_engine
    from generation.worker import GenerationWorker

    engine = load_engine(tiny_model, device="cuda", safety_checker=False)
    assert engine.dtype == "float16"
    prompts = ("ピカチュウ", "かわいい鳥", "炎のポケモン", "青い海")
    requests = [
        GenerationRequest(prompt=p, seed=10 + i, steps=4, height=64, width=64)
        for i, p in enumerate(prompts)
    ]
    alone = [engine.generate([r])[0] for r in requests]
    worker = GenerationWorker(engine, queue_size=8, max_batch=4)
    worker.start()
    try:
        # Another batch key (more steps) runs first, alone, while the four queue up together.
        blocker = worker.submit(
            100, 99, GenerationRequest(prompt="待って", steps=8, height=64, width=64)
        )
        handles = [worker.submit(i + 1, i + 1, r) for i, r in enumerate(requests)]
        results = await asyncio.wait_for(
            asyncio.gather(blocker.future, *(h.future for h in handles)), timeout=120
        )
    finally:
        await worker.stop(timeout=60)
    assert worker.healthy
    assert [r.batch_size for r in results] == [1, 4, 4, 4, 4]
    for result, single in zip(results[1:], alone, strict=True):
        assert isinstance(single, GeneratedImage), single
        difference = np.abs(_pixels(result.first.png) - _pixels(single.png))
        # fp16 kernels may differ between batch sizes; the same seed must still give the
        # same picture (another seed or prompt differs by tens of levels on average).
        assert difference.mean() <= 2.0
        assert difference.max() <= 32
