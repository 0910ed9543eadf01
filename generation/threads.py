"""Torch work on the CPU belongs to one live thread: the helper that keeps loading off the others.

torch's CPU kernels run in a GNU OpenMP (libgomp) team owned by the thread that calls them, and
the team lives as long as that thread does. Once two live threads own a team, libgomp counts
more threads than cores and stops spinning between kernels (100 spins instead of 300 000):
each parallel kernel then wakes its helper thread through a futex. On 2 cores that made every
picture of the tiny model 2.5× slower on the second thread (docs/PERFORMANCE.md, "One thread
runs torch").

So torch runs first on a thread that ends (loading the model and the translator), then only on
the `generation-worker` thread: never on the main or event-loop thread, never through
`asyncio.to_thread` (an executor's threads stay alive, and with them their teams).
tests/bot/test_torch_threads.py checks it on the real `pokemon-bot run` process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def call_on_own_thread(fn: Callable[..., T], *args: Any, name: str, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` on a new daemon thread: its result, or its exception, once that
    thread has ended and its OpenMP team with it. A Ctrl-C interrupts the wait (the thread is
    a daemon: it does not hold the process up)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller, re-raised there
            box["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    wait_ended([thread.native_id])
    if "error" in box:
        raise box["error"]
    return box["result"]


def wait_ended(native_ids: Iterable[int | None], timeout: float = 5.0) -> None:
    """Until the OS threads `native_ids` are gone (Linux; elsewhere it returns at once).

    `Thread.join` returns before the thread's own C-level exit, which is where libgomp lets
    go of its team; a thread that starts torch work a moment later would otherwise still
    count it."""
    deadline = time.monotonic() + timeout
    for native_id in native_ids:
        if native_id is None:
            continue
        task = Path(f"/proc/self/task/{native_id}")
        while task.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
