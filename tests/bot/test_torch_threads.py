"""On the CPU, torch runs on one live thread: `generation-worker` (issue 22).

torch's CPU kernels run in an OpenMP team owned by the calling thread; while a second live
thread owns one too, every picture on the first costs 2.5× on 2 cores (generation/threads.py,
docs/PERFORMANCE.md "One thread runs torch"). The real `pokemon-bot run` process draws a
picture (tiny checkpoint, English prompt through the tiny translator, against the loopback fake
Discord) under `tests/torchthreads.py`, which gives every Python thread an OS name; the OpenMP
helper threads inherit their creator's, so /proc tells which threads own a team. Only the
worker may: the model loads on a thread that has ended by then. Timings stay in bench/
(`bench/generation.py` reports the cost beside a second team); this checks the cause.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.fakediscord import FakeDiscord
from tests.reliability.test_process import bot_env
from tests.torchthreads import PREFIX

THREAD_SETTINGS = ("OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_")
START_WITHIN = 180.0  # imports torch and loads two models on a shared 2-core CPU: a hang guard
DRAW_WITHIN = 180.0

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="reads thread names from Linux's /proc"
)


def clean_env(fake: FakeDiscord, tmp_path: Path, translator: Path) -> dict[str, str]:
    """The process tests' bot settings, without this process's threading settings (the test
    suite's OMP_NUM_THREADS=1 would start no team at all)."""
    env = bot_env(fake, tmp_path / "bot.sqlite3", POKEMON_TRANSLATE_MODEL=str(translator))
    env = {k: v for k, v in env.items() if not k.startswith(THREAD_SETTINGS)}
    return {
        **env,
        "HOME": str(tmp_path),
        "CUDA_VISIBLE_DEVICES": "",
        # Teams of two threads even on a 1-core runner, so there is a helper thread to see.
        "OMP_NUM_THREADS": "2",
        # numpy's OpenBLAS (not torch's runtime; the bot never calls it) would start threads
        # of its own on whichever thread imports numpy first.
        "OPENBLAS_NUM_THREADS": "1",
    }


def team_owners(pid: int, names_file: Path) -> Counter[str]:
    """Python thread name → how many live native threads it started (OpenMP team helpers)."""
    names: dict[int, str] = {}
    for line in names_file.read_text().splitlines():
        native_id, name = line.split("\t", 1)
        names[int(native_id)] = name
    owners: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        match = re.fullmatch(rf"{PREFIX}(\d+)", comm)
        if int(task.name) in names or match is None:
            continue  # a Python thread, or one a library named itself (not libgomp's)
        owners[names.get(int(match.group(1)), f"gone thread {match.group(1)}")] += 1
    return owners


async def draw_one_picture(
    fake: FakeDiscord, tmp_path: Path, translator: Path, *, torch_on_main: bool
) -> Counter[str]:
    """Start the real bot under the naming launcher, draw one picture; the team owners then."""
    names_file = tmp_path / "threads.tsv"
    launcher = [sys.executable, "-m", "tests.torchthreads", str(names_file)]
    if torch_on_main:
        launcher.append("--torch-on-main")
    log = (tmp_path / "bot.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        *launcher, "--", "run",
        cwd=tmp_path, env=clean_env(fake, tmp_path, translator), stdout=log, stderr=log,
    )  # fmt: skip
    try:
        await fake.wait_until(
            lambda: (
                proc.returncode is not None
                or (fake.sync_count() >= 1 and fake.gateway.live_sessions())
            ),
            START_WITHIN,
        )
        assert proc.returncode is None, (tmp_path / "bot.log").read_text()[-3000:]
        await asyncio.sleep(0.2)  # let the client finish reading READY and the guild
        await fake.invoke("pokemon", {"prompt": "a cute pikachu"}, user=fake.alice)
        await fake.wait_until(lambda: any(m.attachments for m in fake.bot_messages()), DRAW_WITHIN)
        # The worker thread is alive and idle between jobs: its team is still there.
        return team_owners(proc.pid, names_file)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


async def test_pokemon_bot_run_on_the_cpu_runs_torch_kernels_only_on_the_generation_worker(
    fake_discord: FakeDiscord, tmp_path: Path, tiny_marian: Path
) -> None:
    owners = await draw_one_picture(fake_discord, tmp_path, tiny_marian, torch_on_main=False)
    # The worker owns a team (so the probe sees teams at all), and nothing else does: not
    # the main thread, not `model-load` (ended), not an executor thread.
    assert set(owners) == {"generation-worker"}, owners


async def test_the_check_catches_torch_run_on_the_main_thread_first(
    fake_discord: FakeDiscord, tmp_path: Path, tiny_marian: Path
) -> None:
    # The penalty brought back on purpose: the main thread runs one parallel kernel and lives
    # on as the event loop's thread.
    owners = await draw_one_picture(fake_discord, tmp_path, tiny_marian, torch_on_main=True)
    assert set(owners) == {"MainThread", "generation-worker"}, owners
