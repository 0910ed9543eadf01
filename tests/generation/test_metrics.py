"""The Prometheus endpoint: off unless started, and it reports what the generators count."""

from __future__ import annotations

import asyncio
import math
import shutil
import socket
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import REGISTRY, generate_latest

from generation import metrics
from generation.errors import QueueFullError
from generation.fake_engine import FakeEngine, parse
from generation.generator import Cancelled, Done, Failed, JobHandle, Started
from generation.local import ThreadGenerator
from generation.remote import RemoteGenerator
from generation.types import GeneratedImage, GenerationRequest, GenerationResult
from generation.worker import GenerationWorker
from tests.redisprocs import Workers

WAIT = 60.0
Remote = Callable[..., Awaitable[RemoteGenerator]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return reply.read().decode()


def scrape_registry() -> str:
    """What /metrics would serve now, without a server."""
    return generate_latest(REGISTRY).decode()


def sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


async def test_job_outcomes_are_counted_and_served() -> None:
    port = free_port()
    metrics.start_metrics_server(port, addr="127.0.0.1")
    before = scrape(port)
    done_name = 'pokemon_jobs_total{outcome="done"}'
    full_name = 'pokemon_jobs_total{outcome="queue_full"}'
    handles = [JobHandle(i, lambda: False) for i in range(3)]
    images = tuple(GeneratedImage(b"png", seed, 3, 64, 64, 1, False) for seed in (1, 2, 3))
    result = GenerationResult(1, images, queued_seconds=0.5, run_seconds=1.5)
    handles[0].publish(Done(result))
    handles[0].publish(Done(result))  # a duplicate is not counted
    handles[1].publish(Failed(QueueFullError("full")))
    handles[2].publish(Cancelled())
    after = await asyncio.to_thread(scrape, port)
    assert (sample(after, done_name) or 0) - (sample(before, done_name) or 0) == 1
    assert (sample(after, full_name) or 0) - (sample(before, full_name) or 0) == 1
    images = "pokemon_images_total"
    assert (sample(after, images) or 0) - (sample(before, images) or 0) == 3  # one job of three
    assert (sample(after, "pokemon_images_per_second") or 0) > 0
    for name in (
        "pokemon_queue_length",
        "pokemon_running_jobs",
        "pokemon_queued_seconds_bucket",
        "pokemon_generating_seconds_bucket",
        "pokemon_images_total",
        "pokemon_workers_online",
        "pokemon_worker_capacity",
    ):
        assert f"\n{name}" in after, name
    assert "# TYPE pokemon_discord_api_errors_total counter" in after


async def test_a_worker_serves_its_own_metrics(workers: Workers, remote: Remote) -> None:
    port = free_port()
    workers.start("w1", extra_env={"POKEMON_METRICS_PORT": str(port)})
    generator = await remote()
    await generator.wait_for_workers(1, WAIT)
    handle = await generator.submit(1, 1, GenerationRequest("x", steps=2, height=64, width=64))
    async with asyncio.timeout(WAIT):
        assert isinstance(await handle.wait(), Done)
    done = 'pokemon_jobs_total{outcome="done"}'
    async with asyncio.timeout(WAIT):  # the worker counts just after writing the result
        while sample(await asyncio.to_thread(scrape, port), done) != 1:  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def test_the_in_process_generator_reports_its_queue_running_job_and_worker() -> None:
    port = free_port()
    metrics.start_metrics_server(port, addr="127.0.0.1")
    generator = ThreadGenerator(
        GenerationWorker(FakeEngine(parse("fake:step=0.05")), queue_size=4, max_batch=1)
    )
    await generator.start()
    try:
        request = GenerationRequest(prompt="ピカチュウ", steps=200, height=64, width=64)
        running = await generator.submit(1, 10, request)
        async with asyncio.timeout(WAIT):
            async for event in running.events():
                if isinstance(event, Started):
                    break
        waiting = [await generator.submit(n, 10 + n, request) for n in (2, 3)]
        busy = await asyncio.to_thread(scrape, port)
        assert sample(busy, "pokemon_running_jobs") == 1
        assert sample(busy, "pokemon_queue_length") == 2
        assert sample(busy, "pokemon_workers_online") == 1
        assert sample(busy, "pokemon_worker_capacity") == 1
        for handle in (running, *waiting):
            handle.cancel()
        async with asyncio.timeout(WAIT):
            for handle in (running, *waiting):
                await handle.wait()
        idle = await asyncio.to_thread(scrape, port)
        assert sample(idle, "pokemon_running_jobs") == 0
        assert sample(idle, "pokemon_queue_length") == 0
    finally:
        await generator.stop(timeout=5)


def test_a_watched_folder_reports_its_disks_free_and_total_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    metrics.watch_disk(folder)
    labels = {"path": str(folder.resolve())}
    text = scrape_registry()
    usage = shutil.disk_usage(folder)
    assert sample(text, f'pokemon_disk_size_bytes{{path="{labels["path"]}"}}') == usage.total
    free = sample(text, f'pokemon_disk_free_bytes{{path="{labels["path"]}"}}')
    assert free is not None
    assert abs(free - usage.free) < 64 * 1024 * 1024  # other writers on the disk meanwhile
    assert 0 < free <= usage.total


def test_a_watched_folder_that_is_gone_reads_as_nan_not_as_a_full_disk(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    metrics.watch_disk(folder)
    folder.rmdir()
    free = sample(scrape_registry(), f'pokemon_disk_free_bytes{{path="{folder.resolve()}"}}')
    assert free is not None
    assert math.isnan(free)


def test_a_delivery_is_observed_in_the_time_to_picture_histogram() -> None:
    before = scrape_registry()
    metrics.record_delivery(7.0)
    metrics.record_delivery(-1.0)  # a clock step back counts as zero, not as a negative wait
    after = scrape_registry()
    count = "pokemon_time_to_picture_seconds_count"
    total = "pokemon_time_to_picture_seconds_sum"
    assert (sample(after, count) or 0) - (sample(before, count) or 0) == 2
    assert (sample(after, total) or 0) - (sample(before, total) or 0) == 7.0
    le10 = 'pokemon_time_to_picture_seconds_bucket{le="10.0"}'
    le5 = 'pokemon_time_to_picture_seconds_bucket{le="5.0"}'
    assert (sample(after, le10) or 0) - (sample(before, le10) or 0) == 2
    assert (sample(after, le5) or 0) - (sample(before, le5) or 0) == 1
