"""`bench/scale.py` still runs end to end (smallest size) and reports every key; never speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_scale_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    command = [
        sys.executable, "-m", "bench.scale",
        "--workers", "1", "--kill-workers", "", "--jobs-per-worker", "2",
        "--overhead-samples", "2", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text("utf-8"))
    assert set(data) >= {"machine", "redis", "model", "backlog", "kills", "overhead"}
    assert data["redis"].startswith("redis-server ")  # which one the figures were measured on
    (row,) = data["backlog"]
    assert row["workers"] == 1
    assert row["jobs"] == 2
    assert row["lost"] == row["reported_twice"] == []
    assert row["not_done"] == {}
    assert set(data["overhead"]) == {"submit_to_start_s", "last_step_to_result_s"}
