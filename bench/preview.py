"""Live-preview benchmark: what a preview costs on the generation side, what it sends, and how
many a job makes.

1. One preview (`BatchPreviews.take`: the SD 1.x latent-to-RGB factors, a bilinear resize to
   128 px, a JPEG) of a 512² job (64×64 latents), one picture and a set of four, with noisy
   latents (the first steps) and smooth ones (the last): time per preview and bytes.
2. Whole jobs on the real worker thread with the fake engine's timed steps (no model: only the
   steps' duration matters), with production's pacing (none before 2 s, then one per 2 s): a
   slow job (CPU-like) and a fast one (GPU-like). `members_preview` is wrapped to record where
   and how long it ran: every preview is made on the `generation-worker` thread, none on the
   event loop.

    python bench/preview.py
    python bench/preview.py --quick --json out.json   # smoke run
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ is first on sys.path and this file would shadow the `generation`
# package: put the repository root in front.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import threading
import time
from typing import Any

from bench.common import machine, percentile, table, write_json


def one_preview(repeats: int, threads: int) -> list[dict[str, Any]]:
    import torch

    from generation.preview import BatchPreviews, PreviewPacing

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    rows: list[dict[str, Any]] = []
    for pictures in (1, 4):
        noise = torch.randn(pictures, 4, 64, 64, generator=generator)
        coarse = torch.randn(pictures, 4, 8, 8, generator=generator)
        smooth = 2 * torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear")
        for kind, latents in (("noisy (first steps)", noise), ("smooth (last steps)", smooth)):
            seconds: list[float] = []
            sizes: list[int] = []
            for _ in range(repeats + 3):  # three warm-ups, not counted
                previews = BatchPreviews(PreviewPacing(0.0, 0.0), [pictures])
                started = time.perf_counter()
                (data,) = previews.take(1, 25, 0.0, lambda latents=latents: latents)
                seconds.append(time.perf_counter() - started)
                sizes.append(len(data or b""))
            seconds = seconds[3:]
            rows.append(
                {
                    "torch_threads": threads,
                    "pictures": pictures,
                    "latents": kind,
                    "ms_p50": 1000 * percentile(seconds, 50),
                    "ms_p95": 1000 * percentile(seconds, 95),
                    "bytes": sizes[-1],
                }
            )
    return rows


async def one_job(step_seconds: float, steps: int) -> dict[str, Any]:
    """One 512² job on the real worker thread with production pacing."""
    import generation.preview as preview_module
    from generation.fake_engine import FakeEngine, FakeOptions
    from generation.preview import PreviewPacing
    from generation.types import GenerationRequest, Progress
    from generation.worker import GenerationWorker

    made: list[tuple[str, float, int]] = []  # (thread, seconds, bytes)
    original = preview_module.members_preview

    def timed(latents: Any, spans: Any) -> list[bytes | None]:
        started = time.perf_counter()
        previews = original(latents, spans)
        size = sum(len(p or b"") for p in previews)
        made.append((threading.current_thread().name, time.perf_counter() - started, size))
        return previews

    preview_module.members_preview = timed
    worker = GenerationWorker(
        FakeEngine(FakeOptions(step=step_seconds)), queue_size=2, previews=PreviewPacing()
    )
    worker.start()
    seen: list[Progress] = []
    try:
        request = GenerationRequest("p", steps=steps, height=512, width=512)
        ticket = worker.submit(1, 1, request, on_progress=seen.append)
        result = await ticket.future
    finally:
        await worker.stop(timeout=5)
        preview_module.members_preview = original
    threads = sorted({thread for thread, _s, _b in made})
    return {
        "steps": steps,
        "run_s": result.run_seconds,
        "previews": sum(1 for p in seen if p.preview is not None),
        "bytes_sent": sum(len(p.preview) for p in seen if p.preview is not None),
        "preview_ms_total": 1000 * sum(s for _t, s, _b in made),
        "threads": threads or ["none"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, short jobs")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    import torch

    from generation.threads import call_on_own_thread

    cores = torch.get_num_threads()
    repeats = 5 if args.quick else 200
    # One torch thread, and the engine's default (every core): torch's threads wait for work
    # by spinning, which on a busy machine shows in the small tensors a preview takes.
    # Measured on a thread that ends (and its OpenMP team with it), so that the jobs below run
    # torch on the `generation-worker` thread alone, as the bot does (generation/threads.py).
    previews = [
        row
        for threads in sorted({1, cores})
        for row in call_on_own_thread(one_preview, repeats, threads, name="bench-preview")
    ]
    print(table(
        [
            [r["torch_threads"], r["pictures"], r["latents"], r["ms_p50"], r["ms_p95"], r["bytes"]]
            for r in previews
        ],
        ["torch threads", "pictures", "latents", "ms p50", "ms p95", "bytes"],
    ))  # fmt: skip
    jobs = {
        "slow (CPU-like: 25 steps of 0.4 s)": (0.4, 25),
        "fast (GPU-like: 25 steps of 0.02 s)": (0.02, 25),
    }
    if args.quick:
        jobs = {"slow (quick: 10 steps of 0.3 s)": (0.3, 10), "fast": (0.01, 10)}
    runs = {name: asyncio.run(one_job(*shape)) for name, shape in jobs.items()}
    print()
    print(table(
        [
            [name, r["run_s"], r["previews"], r["bytes_sent"], r["preview_ms_total"],
             ", ".join(r["threads"])]
            for name, r in runs.items()
        ],
        ["job", "run s", "previews", "bytes sent", "preview ms (total)", "made on"],
    ))  # fmt: skip
    if args.json is not None:
        write_json(args.json, {"machine": machine("cpu"), "preview": previews, "jobs": runs})


if __name__ == "__main__":
    main()
