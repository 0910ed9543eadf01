"""Shared helpers for the benchmarks: statistics, peak memory, the machine, tables, JSON."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from generation import threads

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = ROOT / "tests" / "reference" / "tiny-pokemon-ja"
SD1X_CONFIG = ROOT / "bench" / "sd1x-config"


def median(values: Iterable[float]) -> float:
    """The median, or NaN for no values."""
    data = list(values)
    return statistics.median(data) if data else float("nan")


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks like numpy's default."""
    data = sorted(values)
    if not data:
        return float("nan")
    rank = (len(data) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """p50, p99, max and count of a sample (seconds stay seconds)."""
    return {
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
        "n": len(values),
    }


# ---- peak memory ------------------------------------------------------------------------------


def reset_peak_memory(device: str) -> None:
    """Start a new peak: CUDA's allocator counter, or the kernel's RSS high-water mark."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return
    # Linux ≥ 4.0: writing 5 resets VmHWM, so each configuration gets its own peak.
    # Where it cannot be reset, the peak is the process's peak so far.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_bytes(device: str) -> int:
    """Peak since `reset_peak_memory`: `torch.cuda.max_memory_allocated`, or peak RSS on CPU."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    try:
        status = Path("/proc/self/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+)\s+kB", status)
        if match:
            return int(match.group(1)) * 1024
    except OSError:
        pass
    import resource

    # ru_maxrss is in KiB on Linux (bytes on macOS); it cannot be reset.
    scale = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def peak_memory_source(device: str) -> str:
    """What `peak_memory_bytes` measures on `device`, for the report."""
    if device.startswith("cuda"):
        return "torch.cuda.max_memory_allocated"
    return "peak RSS (VmHWM, reset per configuration)"


# ---- threads ----------------------------------------------------------------------------------
#
# torch's CPU kernels run in an OpenMP team owned by the calling thread, and two live teams on
# 2 cores cost the second 2.5× (generation/threads.py). The benchmarks run torch as the bot
# does: never on the main thread, each part on a thread that has ended before the next begins
# (`generation.threads.call_on_own_thread`). `second_team` brings the cost back on purpose, to
# measure it.


@contextlib.contextmanager
def second_team() -> Iterator[None]:
    """Another live thread that owns an OpenMP team, as the main thread would after running
    torch once: it runs one parallel kernel, then waits until the block ends."""
    import torch

    ready, leave = threading.Event(), threading.Event()

    def hold() -> None:
        torch.ones(1 << 20).add_(1)  # above ATen's grain size: a parallel region
        ready.set()
        leave.wait()

    thread = threading.Thread(target=hold, name="bench-second-team", daemon=True)
    thread.start()
    ready.wait()
    try:
        yield
    finally:
        leave.set()
        thread.join()
        threads.wait_ended([thread.native_id])


def second_team_cost(call: Callable[[int], Any], rounds: int) -> dict[str, Any]:
    """Seconds of `call(round)` alone and with `second_team()` held, in turns (median of
    `rounds` each, after one warm-up): the penalty the bot must never pay, and how much."""
    call(0)
    alone: list[float] = []
    contended: list[float] = []
    for index in range(rounds):
        for sample, held in ((alone, False), (contended, True)):
            with second_team() if held else contextlib.nullcontext():
                started = time.perf_counter()
                call(index + 1)
                sample.append(time.perf_counter() - started)
    alone_s, contended_s = median(alone), median(contended)
    return {
        "rounds": rounds,
        "alone_s": alone_s,
        "second_team_s": contended_s,
        "ratio": contended_s / alone_s,
        "omp_env": {
            key: value
            for key, value in sorted(os.environ.items())
            if key.startswith(("OMP_", "GOMP_", "KMP_", "MKL_"))
        },
    }


# ---- the machine ------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str) -> dict[str, Any]:
    """The hardware and library versions a result was measured with."""
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": None,
        # A shared machine's other work shows up in the timings: keep the load with them.
        "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        import diffusers
        import transformers

        info["diffusers"] = diffusers.__version__
        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


# ---- output -----------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A Markdown table (pastes straight into docs/PERFORMANCE.md)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def mib(value: int | None) -> float | None:
    return None if value is None else value / (1024 * 1024)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `data` as indented JSON (NaN becomes null), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(data), indent=2, ensure_ascii=False) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
