"""`pokemon-bot` with each Python thread's OS name set to `py<its native id>`, so that a test can
read from /proc which thread started each native thread.

    python -m tests.torchthreads NAMES_FILE [--torch-on-main] -- pokemon-bot ARGUMENTS...

A thread made by `pthread_create` starts with its creator's name, and libgomp (torch's OpenMP
runtime) makes a team's helper threads from the thread that first runs a parallel kernel: a
native thread named `py<N>` belongs to the team of Python thread N. NAMES_FILE gets a line
`native id<TAB>Python name` for every Python thread as it starts. `--torch-on-main` runs one
parallel torch kernel on the main thread first: the mistake that
tests/bot/test_torch_threads.py must catch (generation/threads.py says why it costs).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

PREFIX = "py"


def _name_this_thread(names: Path) -> None:
    native_id = threading.get_native_id()
    Path(f"/proc/self/task/{native_id}/comm").write_text(f"{PREFIX}{native_id}")
    with names.open("a") as out:  # one short append per thread: no interleaving
        out.write(f"{native_id}\t{threading.current_thread().name}\n")


def install(names: Path) -> None:
    """Name this thread now and every `threading` thread as it starts."""

    def first_call(_frame: Any, _event: str, _arg: Any) -> None:
        sys.setprofile(None)  # once per thread: no profiling overhead afterwards
        _name_this_thread(names)

    _name_this_thread(names)
    threading.setprofile(first_call)


def main(argv: list[str]) -> int:
    split = argv.index("--")
    options, bot_args = argv[:split], argv[split + 1 :]
    install(Path(options[0]))
    if "--torch-on-main" in options[1:]:
        import torch

        torch.ones(1 << 20).add_(1)  # above ATen's grain size: runs in an OpenMP team
    from bot.cli import main as bot_main

    return bot_main(bot_args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
