"""`bench/upscale.py --quick` keeps working: it runs each configuration in its own process on the
CPU and writes its JSON. Only the shape of the results is checked, never the numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT_KEYS = {
    "device",
    "dtype",
    "size",
    "out_size",
    "tile",
    "tiles",
    "tile_size",
    "parameters",
    "load_s",
    "wall_s",
    "timings",
    "format",
    "bytes",
    "png_bytes",
    "rss_after_load_bytes",
    "peak_rss_bytes",
    "cuda_peak_bytes",
    "torch_threads",
}


def test_quick_upscale_bench_writes_both_configurations(tmp_path: Path) -> None:
    out = tmp_path / "upscale.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "upscale.py"), "--quick", "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| tiling" in proc.stdout
    data = json.loads(out.read_text())
    assert data["benchmark"] == "upscale"
    assert [r["tile"] for r in data["results"]] == ["auto", "whole"]
    for result in data["results"]:
        assert set(result) == RESULT_KEYS
        assert result["out_size"] == 4 * result["size"]
        assert set(result["timings"]) == {"decode", "upscale", "encode"}
        assert result["peak_rss_bytes"] >= result["rss_after_load_bytes"] > 0
    assert [e["picture"] for e in data["encode"]] == ["smooth + light noise", "noise (worst case)"]
    for row in data["encode"]:
        assert row["format"] in {"png", "webp", "jpeg"}
        assert row["bytes"] <= row["png_bytes"]
