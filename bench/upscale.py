"""Upscale benchmark: one 512² → 2048² upscale, its time and its peak memory.

The network is `RealESRGAN_x4plus_anime_6B`'s architecture (RRDBNet, 6 blocks, 64 features,
32 growth channels, 4.47 M parameters) with random weights, saved to a file and loaded through
the project's own loader (the real weights cannot be downloaded here; the compute is the same).
Each configuration runs in its own process, so that its peak RSS (`ru_maxrss`) is its own; the
child reports the RSS after loading too, so the upscale's own share can be told apart.

    python bench/upscale.py                       # CPU: tiled (the default there) and whole
    python bench/upscale.py --device cuda --json out.json
    python bench/upscale.py --quick --json out.json   # smoke run: a 64² picture, tiny network

Encoding times are of a random network's output (noise compresses worse than a drawing).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ is first on sys.path and this file would shadow the `generation`
# package: put the repository root in front.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from typing import Any

from bench.common import ROOT, machine, mib, table, write_json

SIZE = 512
QUICK_SIZE = 64
REAL_SHAPE = {"features": 64, "blocks": 6, "growth": 32}
QUICK_SHAPE = {"features": 8, "blocks": 1, "growth": 8}


def _rss_now() -> int:
    """The process's resident memory now, in bytes (Linux), else its peak so far."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _max_rss()


def _max_rss() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # KiB on Linux, bytes on macOS
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def child(args: argparse.Namespace) -> None:
    """One configuration, in this process: load, upscale once, print one JSON line."""
    import numpy as np
    import torch
    from PIL import Image

    from generation.upscale import load_upscaler
    from generation.upscale_arch import NetworkShape, build_network

    shape = NetworkShape(in_channels=3, out_channels=3, **json.loads(args.shape))
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "RealESRGAN_x4plus_anime_6B-random.pth"
        torch.save({"params_ema": build_network(shape).state_dict()}, weights)
        started = time.perf_counter()
        upscaler = load_upscaler(str(weights), device=args.device)
        load_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : args.size, 0 : args.size]
    base = np.stack([x, y, (x + y) // 2], -1) * 255 // args.size
    noisy = base + rng.normal(0, 8, base.shape)
    picture = Image.fromarray(noisy.clip(0, 255).astype(np.uint8))
    # Warm up the kernels on a small picture, untimed.
    upscaler.upscale([picture.resize((32, 32))], tile=None)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_loaded = _rss_now()
    tile: int | str | None = "auto" if args.tile == "auto" else None
    if args.tile not in ("auto", "whole"):
        tile = int(args.tile)
    tiles: list[int] = []
    started = time.perf_counter()
    [result] = upscaler.upscale([picture], tile=tile, on_tile=lambda done, _: tiles.append(done))
    wall_s = time.perf_counter() - started
    if isinstance(result, Exception):
        raise SystemExit(f"upscale failed: {result}")
    out: dict[str, Any] = {
        "device": upscaler.device,
        "dtype": upscaler.dtype,
        "size": args.size,
        "out_size": result.width,
        "tile": args.tile,
        "tiles": result.tiles,
        "tile_size": result.tile_size,
        "parameters": sum(p.numel() for p in upscaler.network.parameters()),
        "load_s": load_s,
        "wall_s": wall_s,
        "timings": result.timings,
        "format": result.format,
        "bytes": len(result.data),
        "png_bytes": result.png_bytes,
        "rss_after_load_bytes": rss_loaded,
        "peak_rss_bytes": _max_rss(),
        "cuda_peak_bytes": (
            int(torch.cuda.max_memory_allocated()) if args.device.startswith("cuda") else None
        ),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(out))


def encode_costs(side: int) -> list[dict[str, Any]]:
    """What encoding a `side`² result costs, for a smooth picture and a noisy worst case (the
    random network's output is nearly flat, so its PNG says nothing about the fallback)."""
    import numpy as np
    from PIL import Image

    from generation.upscale_encode import encode_within

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side]
    smooth = np.stack([x, y, (x + y) // 2], -1) * 255 // side
    pictures = {
        "smooth + light noise": smooth + rng.normal(0, 4, smooth.shape),
        "noise (worst case)": rng.integers(0, 256, smooth.shape),
    }
    rows: list[dict[str, Any]] = []
    for name, pixels in pictures.items():
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        started = time.perf_counter()
        encoded = encode_within(image, "bench\nSteps: 25, Postprocess upscale by: 4")
        rows.append(
            {
                "picture": name,
                "side": side,
                "format": encoded.format,
                "quality": encoded.quality,
                "png_bytes": encoded.png_bytes,
                "bytes": len(encoded.data),
                "encode_s": time.perf_counter() - started,
            }
        )
    return rows


def run_child(device: str, tile: str, size: int, shape: dict[str, int]) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "--device",
            device,
            "--tile",
            tile,
            "--size",
            str(size),
            "--shape",
            json.dumps(shape),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"configuration {tile} on {device} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help="a 64² picture, a tiny network")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--tiles", default=None, help="comma-separated: auto, whole or a tile size (default: both)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tile", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=SIZE, help=argparse.SUPPRESS)
    parser.add_argument("--shape", default=json.dumps(REAL_SHAPE), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    size, shape = (QUICK_SIZE, QUICK_SHAPE) if args.quick else (SIZE, REAL_SHAPE)
    configs = (args.tiles or "auto,whole").split(",")
    load_before = os.getloadavg()[0]
    results = [run_child(args.device, tile, size, shape) for tile in configs]
    rows = [
        [
            r["tile"] if r["tile"] != "auto" else f"auto ({r['tile_size'] or 'whole'})",
            r["tiles"],
            r["wall_s"],
            r["timings"].get("upscale"),
            r["timings"].get("encode"),
            mib(r["rss_after_load_bytes"]),
            mib(r["peak_rss_bytes"]),
            mib(r["cuda_peak_bytes"]),
        ]
        for r in results
    ]
    print(
        f"{size}² → {size * 4}² on {results[0]['device']} ({results[0]['dtype']}), "
        f"{results[0]['parameters']:,} parameters, {results[0]['torch_threads']} torch threads"
    )
    print(
        table(
            rows,
            [
                "tiling",
                "tiles",
                "s",
                "network s",
                "encode s",
                "RSS loaded MiB",
                "peak RSS MiB",
                "CUDA peak MiB",
            ],
        )
    )
    data = {
        "benchmark": "upscale",
        "machine": {**machine(args.device), "loadavg_1m_before": load_before},
        "size": size,
        "shape": shape,
        "results": results,
    }
    encodes = encode_costs(size * 4)
    data["encode"] = encodes
    print(
        table(
            [
                [
                    e["picture"],
                    e["format"],
                    e["quality"],
                    mib(e["png_bytes"]),
                    mib(e["bytes"]),
                    e["encode_s"],
                ]
                for e in encodes
            ],
            ["encoded", "format", "JPEG quality", "PNG MiB", "sent MiB", "encode s"],
        )
    )
    print(f"load average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    if args.json:
        write_json(args.json, data)


if __name__ == "__main__":
    main()
