"""The benchmarks keep working: `bench/generation.py --quick` runs on CPU and writes its JSON.

Only the shape of the results is checked, never the numbers (speed is what the benchmarks
report, not what tests assert).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.common import percentile

ROOT = Path(__file__).resolve().parents[1]
SINGLE_KEYS = {
    "scheduler",
    "steps",
    "dtype",
    "autocast",
    "size",
    "s_per_image",
    "images_per_s",
    "s_per_step",
    "peak_memory_bytes",
    "timings",
    "outcomes",
}
BATCH_KEYS = {
    "max_batch",
    "jobs",
    "wall_s",
    "images_per_s",
    "s_per_image",
    "peak_memory_bytes",
    "outcomes",
    "batch_sizes_seen",
}
SCHEDULER_KEYS = {
    "steps",
    "stock_ms_per_step",
    "cached_ms_per_step",
    "speedup",
    "stock_set_timesteps_ms",
    "cached_set_timesteps_first_ms",
    "cached_set_timesteps_ms",
    "identical",
}


def _run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generation.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "generation.json"
    proc = _run_bench("--quick", "--device", "cpu", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| (b) project default" in proc.stdout  # the table was printed
    return json.loads(out.read_text())


def test_quick_generation_bench_json_has_every_section(quick_results: dict[str, Any]) -> None:
    assert {
        "benchmark",
        "machine",
        "config",
        "peak_memory_source",
        "card",
        "card_cached_lms",
        "default",
        "batches",
        "scheduler_overhead",
        "summary",
    } <= quick_results.keys()
    assert quick_results["config"]["device"] == "cpu"
    assert quick_results["config"]["quick"] is True
    for name in ("card", "card_cached_lms", "default"):
        assert quick_results[name].keys() >= SINGLE_KEYS, name
        assert set(quick_results[name]["timings"]) >= {"encode", "denoise", "decode", "png"}
    assert quick_results["card"]["scheduler"] == "lms"
    assert quick_results["card"]["lms"] == "diffusers LMSDiscreteScheduler"
    assert quick_results["default"]["scheduler"] == "dpmpp-2m"
    assert {
        "default_s_per_image",
        "best_backlog_images_per_s",
        "best_max_batch",
        "speedup_vs_card",
        "backlog1_vs_default",
        "second_team_ratio",
    } <= quick_results["summary"].keys()


def test_quick_generation_bench_times_the_default_beside_a_second_openmp_team(
    quick_results: dict[str, Any],
) -> None:
    second = quick_results["second_team"]
    assert second.keys() >= {"rounds", "alone_s", "second_team_s", "ratio", "omp_env"}
    assert second["ratio"] == pytest.approx(second["second_team_s"] / second["alone_s"])
    assert quick_results["summary"]["second_team_ratio"] == second["ratio"]


def test_quick_generation_bench_runs_every_batch_size_through_the_worker(
    quick_results: dict[str, Any],
) -> None:
    batches = quick_results["batches"]
    assert [row["max_batch"] for row in batches] == [1, 2, 4, 8]
    for row in batches:
        assert row.keys() >= BATCH_KEYS
        # Every queued job came back as an image (no job lost or failed in the worker).
        assert row["outcomes"] == {"ok": row["jobs"] * quick_results["config"]["repeats"]}
        assert max(int(size) for size in row["batch_sizes_seen"]) <= row["max_batch"]
    # With a backlog of 8, max_batch=8 really runs a batch of 8.
    assert "8" in batches[-1]["batch_sizes_seen"]


def test_quick_generation_bench_finds_cached_lms_identical_to_diffusers(
    quick_results: dict[str, Any],
) -> None:
    overhead = quick_results["scheduler_overhead"]
    assert overhead.keys() >= SCHEDULER_KEYS
    assert overhead["identical"] is True


def test_generation_bench_rejects_a_bad_size_with_one_line() -> None:
    proc = _run_bench("--quick", "--device", "cpu", "--size", "63")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: --size must be a positive multiple of 8, not 63"
    ]


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0


def test_build_sd1x_writes_the_published_layout_that_the_project_loader_loads(
    tmp_path: Path,
) -> None:
    # Same code path as the 512² SD 1.x build on CUDA, on the tiny configs so it takes seconds.
    from bench.generation import build_sd1x
    from generation.loader import load_engine
    from generation.types import GenerationRequest

    tiny = ROOT / "tests" / "reference" / "tiny-pokemon-ja"
    target = build_sd1x(tmp_path / "random", config_dir=tiny, tokenizer_dir=tiny / "tokenizer")
    for name in ("unet", "vae", "text_encoder", "safety_checker"):
        assert any((target / name).glob("*.safetensors")), name
    assert (target / "tokenizer" / "spiece.model").is_file()
    assert (target / "model_index.json").is_file()
    stamp = (target / ".bench-stamp").read_text()
    assert build_sd1x(target, config_dir=tiny, tokenizer_dir=tiny / "tokenizer") == target
    assert (target / ".bench-stamp").read_text() == stamp  # reused, not rebuilt

    engine = load_engine(target, device="cpu", safety_checker=False)
    (image,) = engine.generate(
        [GenerationRequest(prompt="ピカチュウ", steps=2, height=64, width=64)]
    )
    assert getattr(image, "png", b"").startswith(b"\x89PNG")


def test_quick_bot_bench_reports_ack_latency_and_overhead_percentiles(tmp_path: Path) -> None:
    out = tmp_path / "bot.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bot.py"), "--quick", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    users = data["config"]["users"]
    for key in ("ack_latency_s", "job_overhead_idle_s", "job_overhead_busy_s"):
        assert data[key].keys() >= {"p50", "p99", "max", "n"}, key
    # Every burst job was acknowledged, finished and timed; the fake refused no call.
    assert data["ack_latency_s"]["n"] == users * data["config"]["rounds"]
    assert data["job_overhead_busy_s"]["n"] == users * data["config"]["rounds"]
    assert data["job_overhead_idle_s"]["n"] == data["config"]["idle_jobs"]
    assert data["jobs"]["rejected_calls"] == 0
