"""What remote generation guarantees, each proved on a real redis-server with real worker
processes: kill -9 mid-job, poison jobs, a bot restart, a Redis restart, no worker online,
duplicate results, fairness and the in-flight bound, the worker registry and its CLI."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.cli import main as cli_main
from generation.errors import GeneratorUnavailableError
from generation.generator import Done, Failed, JobHandle, Started
from generation.remote import RemoteGenerator
from generation.streams import BOT_GROUP, WORKERS_GROUP, Keys, connect
from generation.translate import translate_prompt
from generation.types import UPSCALE, GenerationRequest, Progress
from tests.redisprocs import RedisServer, Workers

WAIT = 60.0  # a bound on waits (several worker processes share 2 CPUs); never a speed check

Remote = Callable[..., Awaitable[RemoteGenerator]]
KEYS = Keys()


def req(prompt: str, *, steps: int = 3) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, steps=steps, height=64, width=64)


def tiny_png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


async def outcome(handle: JobHandle) -> Any:
    async with asyncio.timeout(WAIT):
        return await handle.wait()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not await check():  # noqa: ASYNC110 (the state lives in Redis: poll it)
            await asyncio.sleep(0.05)


def done_lines(workers: Workers, name: str) -> list[int]:
    """The job ids of the worker's "job=ID: done" log lines (one per result it reported)."""
    return sorted(int(i) for i in re.findall(r"job=(\d+): done$", workers.log(name), re.MULTILINE))


async def assert_done_lines(workers: Workers, name: str, expected: list[int]) -> None:
    """The worker logs a result just after writing it: wait for the lines, then compare."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            while done_lines(workers, name) != expected:  # noqa: ASYNC110 (a log file)
                await asyncio.sleep(0.05)
    assert done_lines(workers, name) == expected


async def test_no_worker_online_is_refused_at_once(remote: Remote) -> None:
    generator = await remote()
    with pytest.raises(GeneratorUnavailableError, match="no generation worker"):
        await generator.submit(1, 10, req("nobody home"))
    status = await generator.status()
    assert not status.healthy
    assert status.workers == 0
    assert "no generation worker" in status.detail


async def test_a_worker_killed_mid_job_loses_nothing(remote: Remote, workers: Workers) -> None:
    workers.start("doomed", model="fake:step=0.05", max_batch=1)
    generator = await remote()
    await generator.wait_for_workers(1, WAIT)
    handle = await generator.submit(1, 10, req("survivor", steps=400))
    async with asyncio.timeout(WAIT):
        async for event in handle.events():
            if isinstance(event, Started):
                break
    workers.start("rescuer", model="fake:step=0.01", max_batch=1)
    await generator.wait_for_workers(2, WAIT)
    workers.kill("doomed")
    done = await outcome(handle)
    assert isinstance(done, Done), done
    assert done.result.first.png.startswith(b"\x89PNG")
    assert done.result.model == "fake:step=0.01"  # the worker that drew it (the rescuer)
    assert done_lines(workers, "doomed") == []
    await assert_done_lines(workers, "rescuer", [1])
    client = connect(workers.url)
    try:
        assert (await client.xpending(KEYS.jobs, WORKERS_GROUP))["pending"] == 0
        assert await client.xlen(KEYS.results) == 0  # read, acknowledged and deleted once
    finally:
        await client.aclose()


async def test_a_poison_job_fails_after_its_deliveries_and_is_set_aside(
    remote: Remote, workers: Workers
) -> None:
    """...and a harmless job that shared its batch is not failed with it."""
    model = "fake:step=0.02,crash=boom"
    generator = await remote()
    workers.start("p0", model=model, max_attempts=2, reclaim_idle=0.5)
    await generator.wait_for_workers(1, WAIT)
    # A blocker holds the worker until both jobs wait in it, so they start as one batch.
    blocker = await generator.submit(3, 12, req("blocker", steps=400))
    async with asyncio.timeout(WAIT):
        async for event in blocker.events():
            if isinstance(event, Started):
                break
    # Pictures drawn from a picture: the dead-letter entry must keep neither texts nor it.
    source = tiny_png_bytes()

    def from_picture(prompt: str) -> GenerationRequest:
        return dataclasses.replace(
            req(prompt, steps=10),
            negative_prompt="secret-negative",
            init_image=source,
            strength=0.5,
        )

    handle = await generator.submit(1, 10, from_picture("boom secret-prompt"))
    innocent = await generator.submit(2, 11, from_picture("innocent"))
    client = connect(workers.url)
    try:
        await until(lambda: _equals(_pending_of(client), (3, [b"p0"])), "all three held by p0")
    finally:
        await client.aclose()
    blocker.cancel()
    # Each worker that takes the job dies of it; a supervisor starts the next one.
    crashes = 0
    async with asyncio.timeout(WAIT):
        while not handle.done:
            proc = workers.procs[f"p{crashes}"]
            if proc.poll() is not None:
                assert proc.returncode == 70  # the fake engine's crash
                crashes += 1
                workers.start(f"p{crashes}", model=model, max_attempts=2, reclaim_idle=0.5)
            await asyncio.sleep(0.05)
    failed = await outcome(handle)
    assert isinstance(failed, Failed)
    assert failed.error.code == "poison"
    assert "set aside" in str(failed.error)
    assert crashes == 2  # started, crashed, started again, crashed; the third says poison
    # The batch-mate ran alone once it was suspect: it finished instead of reaching the limit.
    assert isinstance(await outcome(innocent), Done)
    client = connect(workers.url)
    try:
        dead = await client.xrange(KEYS.dead)
        assert len(dead) == 1
        entry = dead[0][1]
        assert entry[b"job"] == b"1"
        assert entry[b"user"] == b"10"
        assert entry[b"attempts"] == b"2"
        assert entry[b"deliveries"] == b"3"
        assert entry[b"reason"] == b"poison"
        assert entry[b"worker"] == b"p2"
        # What an operator needs to see why, and nothing the user typed or uploaded.
        assert json.loads(entry[b"request"]) == {
            "seed": 0,
            "steps": 10,
            "guidance": 7.5,
            "width": 64,
            "height": 64,
            "scheduler": "dpmpp-2m",
            "translate": False,
            "strength": 0.5,
            "count": 1,
            "init_image_bytes": len(source),
        }
        everything = b" ".join(entry.values())
        for secret in (b"secret-prompt", b"secret-negative", b"boom"):
            assert secret not in everything
        assert base64.b64encode(source)[:40] not in everything
        assert source[:40] not in everything
        assert (await client.xpending(KEYS.jobs, WORKERS_GROUP))["pending"] == 0
    finally:
        await client.aclose()


async def test_results_finished_while_the_bot_was_down_are_read_on_restart(
    remote: Remote, workers: Workers
) -> None:
    workers.start("w1", model="fake:step=0.02", max_batch=2)
    first = await remote()
    await first.wait_for_workers(1, WAIT)
    handles = [await first.submit(i, 10 + i, req(f"job{i}", steps=30)) for i in (1, 2, 3)]
    async with asyncio.timeout(WAIT):
        async for event in handles[0].events():
            if isinstance(event, Started):
                break
    left = await first.stop(timeout=0)  # the bot goes down while the worker runs its jobs
    assert sorted(left) == [1, 2, 3]
    client = connect(workers.url)
    try:
        await until(
            lambda: _equals(client.xlen(KEYS.results), 3), "all three results written meanwhile"
        )
        second = await remote()  # the bot comes back; its job service resubmits the three
        again = [await second.submit(i, 10 + i, req(f"job{i}", steps=30)) for i in (1, 2, 3)]
        for handle in again:
            done = await outcome(handle)
            assert isinstance(done, Done)
        await assert_done_lines(workers, "w1", [1, 2, 3])  # each ran once
        await until(lambda: _equals(client.xlen(KEYS.results), 0), "results acknowledged")
        assert (await client.xpending(KEYS.results, BOT_GROUP))["pending"] == 0
    finally:
        await client.aclose()


async def test_a_reused_job_id_never_gets_another_users_picture(
    remote: Remote, workers: Workers
) -> None:
    """The bot's database was restored from a backup (or reset) while Redis kept the old
    jobs: its new job 1 is someone else's, and must not be handed the old job 1's result."""
    workers.start("w1", model="fake:step=0.02", max_batch=1)
    first = await remote()
    await first.wait_for_workers(1, WAIT)
    old = await first.submit(1, 10, req("the old job one", steps=30))
    async with asyncio.timeout(WAIT):
        async for event in old.events():
            if isinstance(event, Started):
                break
    await first.stop(timeout=0)  # the bot goes down while the old job 1 runs
    client = connect(workers.url)
    try:
        await until(lambda: _equals(client.xlen(KEYS.results), 1), "the old result written")
        second = await remote()  # comes back with a database that forgot job 1
        await second.wait_for_workers(1, WAIT)
        mine = await second.submit(1, 20, req("my new job one", steps=3))
        done = await outcome(mine)
        assert isinstance(done, Done)
        assert done.result.first.prompt_used == "my new job one"  # drawn for it, not the old
        await until(lambda: _equals(client.xlen(KEYS.results), 0), "the old result dropped")
    finally:
        await client.aclose()


async def test_a_duplicate_result_changes_nothing(remote: Remote, workers: Workers) -> None:
    workers.start("w1")
    generator = await remote()
    await generator.wait_for_workers(1, WAIT)
    handle = await generator.submit(1, 10, req("once"))
    done = await outcome(handle)
    assert isinstance(done, Done)
    client = connect(workers.url)
    try:
        # A second completion of job 1 (two workers both finished it) arrives late.
        await client.xadd(KEYS.results, {"type": "failed", "job": "1", "code": "x", "message": "x"})
        await until(lambda: _equals(client.xlen(KEYS.results), 0), "the duplicate consumed")
        assert handle.outcome is done
        restarted = await remote()  # and a bot that restarts does not take it for a result
        await client.xadd(KEYS.results, {"type": "failed", "job": "1", "code": "x", "message": "x"})
        await until(lambda: _equals(client.xlen(KEYS.results), 0), "the duplicate consumed")
        assert restarted.handle(1) is None
    finally:
        await client.aclose()


async def test_a_redis_restart_loses_no_accepted_job(
    remote: Remote, workers: Workers, redis_server: RedisServer
) -> None:
    workers.start("w1", model="fake:step=0.02", max_batch=2)
    generator = await remote()
    await generator.wait_for_workers(1, WAIT)
    handles = [await generator.submit(i, 10 + i % 3, req(f"job{i}", steps=20)) for i in range(1, 7)]
    redis_server.stop()
    await until(lambda: _not(generator.status()), "the bot noticed")
    with pytest.raises(GeneratorUnavailableError, match="unavailable"):
        await generator.submit(99, 1, req("while down"))
    await asyncio.sleep(1.0)  # the worker finishes what it holds; its writes wait for Redis
    redis_server.start()
    for handle in handles:
        done = await outcome(handle)
        assert isinstance(done, Done), done
    await assert_done_lines(workers, "w1", list(range(1, 7)))
    assert (await generator.status()).healthy
    # The worker said so too: once when Redis went, once when it came back.
    log = workers.log("w1")
    assert log.count(f"cannot reach Redis at {redis_server.url}: ") == 1, log
    assert log.count(f"Redis at {redis_server.url} can be reached again") == 1, log


async def test_jobs_in_flight_when_redis_loses_its_data_are_sent_again(
    remote: Remote, workers: Workers
) -> None:
    """FLUSHALL (or a crash that lost the last writes) while jobs are in flight: the bot sends
    them again, keeps releasing new ones, and each job still runs and is reported once."""
    workers.start("w1", model="fake:step=0.05", max_batch=1)
    generator = await remote()
    await generator.wait_for_workers(1, WAIT)
    # One worker of batch 1: jobs 1 and 2 go to Redis, job 3 waits in the bot.
    handles = [await generator.submit(i, 10 + i, req(f"job{i}", steps=40)) for i in (1, 2, 3)]
    async with asyncio.timeout(WAIT):
        async for event in handles[0].events():
            if isinstance(event, Started):
                break
    workers.kill("w1")
    client = connect(workers.url)
    try:
        await client.flushall()
        workers.start("w2", model="fake:step=0.01", max_batch=1)
        for handle in handles:
            done = await outcome(handle)
            assert isinstance(done, Done), done
        await assert_done_lines(workers, "w2", [1, 2, 3])
        await until(lambda: _equals(client.xlen(KEYS.results), 0), "results acknowledged")
        assert (await client.xpending(KEYS.jobs, WORKERS_GROUP))["pending"] == 0
        assert (await generator.status()).healthy
    finally:
        await client.aclose()


async def test_writes_redis_refuses_are_retried_until_they_land(
    remote: Remote, workers: Workers
) -> None:
    """Redis answers the worker's writes with an error (out of memory here; READONLY after a
    failover is alike): the worker keeps retrying, and the result lands once Redis takes it."""
    workers.start("w1", model="fake:step=0.02", max_batch=1)
    generator = await remote()
    await generator.wait_for_workers(1, WAIT)
    handle = await generator.submit(1, 10, req("squeezed", steps=150))
    async with asyncio.timeout(WAIT):
        async for event in handle.events():
            if isinstance(event, Progress):
                break
    client = connect(workers.url)
    try:
        await client.config_set("maxmemory-policy", "noeviction")
        await client.config_set("maxmemory", "1")  # every write that needs memory: OOM
        try:
            await until(lambda: _contains(workers, "w1", "maxmemory"), "a write refused")
            await asyncio.sleep(0.3)  # progress is written every step: some are refused
        finally:
            await client.config_set("maxmemory", "0")
        done = await outcome(handle)
        assert isinstance(done, Done), done
        await assert_done_lines(workers, "w1", [1])
    finally:
        await client.aclose()


async def _contains(workers: Workers, name: str, text: str) -> bool:
    return text in workers.log(name)


async def test_jobs_are_released_fairly_and_only_while_workers_have_room(
    remote: Remote, workers: Workers
) -> None:
    workers.start("w1", model="fake:step=0.01", max_batch=1)
    generator = await remote(queue_size=16)
    await generator.wait_for_workers(1, WAIT)
    greedy = [await generator.submit(i, 1, req(f"a{i}", steps=20)) for i in range(1, 7)]
    polite = await generator.submit(100, 2, req("b", steps=20))
    client = connect(workers.url)
    try:
        # One worker of batch 1: at most 2 jobs in the stream; the rest wait in the bot.
        status = await generator.status()
        assert status.queued + status.running == 7
        assert await client.xlen(KEYS.jobs) <= 2
    finally:
        await client.aclose()
    order: list[int] = []

    async def track(handle: JobHandle) -> None:
        assert isinstance(await outcome(handle), Done)
        order.append(handle.job_id)

    await asyncio.gather(*(track(handle) for handle in [*greedy, polite]))
    # User 2's one job overtakes user 1's backlog: only the two already released go first.
    assert order.index(100) <= 2, order


async def test_the_workers_cli_lists_live_workers(
    workers: Workers, remote: Remote, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("POKEMON_REDIS_URL", workers.url)
    monkeypatch.chdir(workers.folder)
    assert await asyncio.to_thread(cli_main, ["workers"]) == 0
    assert capsys.readouterr().out.strip() == "no generation worker is online"
    workers.start("gpu-a", max_batch=3)
    generator = await remote()
    await generator.wait_for_workers(1, WAIT)
    assert await asyncio.to_thread(cli_main, ["workers"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 worker online:")
    assert "gpu-a  device=cpu  model=fake:step=0.02  batch=3" in out
    # Another bot's prefix (POKEMON_REDIS_PREFIX, or --prefix) has workers of its own.
    monkeypatch.setenv("POKEMON_REDIS_PREFIX", "other-bot")
    assert await asyncio.to_thread(cli_main, ["workers"]) == 0
    assert capsys.readouterr().out.strip() == "no generation worker is online"
    assert await asyncio.to_thread(cli_main, ["workers", "--prefix", "pokemon"]) == 0
    assert capsys.readouterr().out.startswith("1 worker online:")
    monkeypatch.delenv("POKEMON_REDIS_PREFIX")
    workers.terminate("gpu-a")  # a clean stop removes it from the registry at once
    assert await asyncio.to_thread(cli_main, ["workers"]) == 0
    assert capsys.readouterr().out.strip() == "no generation worker is online"


def test_the_workers_cli_without_redis_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("POKEMON_REDIS_URL", f"unix://{tmp_path}/nothing.sock")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["workers"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pokemon-bot workers: cannot reach Redis at unix://")
    assert "\n" not in err


def test_a_worker_without_redis_url_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.delenv("POKEMON_REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["worker", "--model", "fake:"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "pokemon-bot worker: POKEMON_REDIS_URL is not set; a worker takes its jobs from Redis"
    )


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def _not(status: Awaitable[Any]) -> bool:
    return not (await status).healthy


async def test_a_worker_on_the_tiny_checkpoint_makes_a_real_picture(
    remote: Remote, workers: Workers, tiny_model: Path
) -> None:
    workers.start("tiny", model=str(tiny_model), max_batch=2, extra_env={"OMP_NUM_THREADS": "1"})
    generator = await remote()
    await generator.wait_for_workers(1, 180)  # torch and the model load first
    handles = [
        await generator.submit(
            i, i, GenerationRequest(f"ピカチュウ {i}", seed=i, steps=2, height=64, width=64)
        )
        for i in (1, 2)
    ]
    # Image-to-image: the source picture's bytes travel in the job entry too.
    source = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(source, format="PNG")
    request = GenerationRequest(
        "ピカチュウ",
        seed=3,
        steps=4,
        height=64,
        width=64,
        init_image=source.getvalue(),
        strength=0.5,
    )
    handles.append(await generator.submit(3, 3, request))
    for handle in handles:
        done = await outcome(handle)
        assert isinstance(done, Done), done
        image = Image.open(io.BytesIO(done.result.first.png))
        assert image.size == (64, 64)
        assert done.result.first.seed == handle.job_id
    assert (await generator.status()).workers == 1
    assert [w.model for w in generator.workers] == [str(tiny_model)]


async def test_a_worker_with_an_upscaler_upscales_and_one_without_says_upscaling_is_off(
    remote: Remote, workers: Workers, tiny_model: Path, tiny_upscaler: Path
) -> None:
    # `pokemon-bot worker` loads POKEMON_UPSCALER as the bot does; the source picture travels
    # in the job entry, the 4x picture comes back in the result.
    env = {"OMP_NUM_THREADS": "1", "POKEMON_UPSCALER": str(tiny_upscaler)}
    workers.start("up", model=str(tiny_model), max_batch=2, extra_env=env)
    generator = await remote()
    await generator.wait_for_workers(1, 180)
    upscale = GenerationRequest("", seed=9, kind=UPSCALE, init_image=tiny_png_bytes())
    done = await outcome(await generator.submit(1, 1, upscale))
    assert isinstance(done, Done), done
    assert Image.open(io.BytesIO(done.result.first.png)).size == (256, 256)
    assert done.result.model == "tiny-x4"

    assert workers.terminate("up") == 0
    workers.start("off", model=str(tiny_model), extra_env={**env, "POKEMON_UPSCALER": "off"})
    await generator.wait_for_workers(1, 180)
    failed = await outcome(await generator.submit(2, 1, upscale))
    assert isinstance(failed, Failed), failed
    assert failed.error.code == "upscaler_off"


async def test_a_worker_translates_english_prompts_as_the_bot_would(
    remote: Remote, workers: Workers, tiny_model: Path, tiny_marian: Path
) -> None:
    """Translation runs where generation runs: a `pokemon-bot worker` loads the translator from
    POKEMON_TRANSLATE_MODEL as the bot's in-process path does, and POKEMON_TRANSLATE=off turns
    it off. Two workers on the tiny checkpoint, each under its own prefix, load side by side."""
    from bot.generators import load_prompt_translator
    from bot.settings import Settings

    translating = {"POKEMON_TRANSLATE_MODEL": str(tiny_marian), "POKEMON_TRANSLATE_DEVICE": "cpu"}
    for name, translate in (("auto", "auto"), ("off", "off")):
        workers.start(
            name,
            model=str(tiny_model),
            max_batch=1,
            extra_env={
                **translating,
                "POKEMON_TRANSLATE": translate,
                "POKEMON_REDIS_PREFIX": name,
                "OMP_NUM_THREADS": "1",
            },
        )
    prompt, negative = "a fire dragon with blue wings", "blurry, low quality"
    request = GenerationRequest(
        prompt, negative_prompt=negative, seed=1, steps=2, height=64, width=64, translate=True
    )
    # What the bot's own engine would be given: the same helper, the same settings.
    settings = Settings(
        _env_file=None,
        pokemon_translate="auto",
        pokemon_translate_model=str(tiny_marian),
        pokemon_translate_device="cpu",
    )
    in_process = load_prompt_translator(settings)
    assert in_process.available
    expected = (translate_prompt(in_process, prompt), translate_prompt(in_process, negative))
    assert expected[0] != prompt
    assert expected[1] != negative

    used: dict[str, tuple[str, str]] = {}
    for name in ("auto", "off"):
        generator = await remote(prefix=name)
        await generator.wait_for_workers(1, 180)  # torch, the model and the translator first
        done = await outcome(await generator.submit(1, 1, request))
        assert isinstance(done, Done), (done, workers.logs())
        used[name] = (done.result.first.prompt_used, done.result.first.negative_used)
    assert used["auto"] == expected
    assert used["off"] == (prompt, negative)
    assert f"translation model {tiny_marian} loaded on cpu" in workers.log("auto")
    assert "translation model" not in workers.log("off")


async def test_only_runs_that_started_count_towards_poison(
    remote: Remote, workers: Workers
) -> None:
    """A job that only waited in a killed worker's prefetch is not blamed for the crash."""
    workers.start("doomed", model="fake:step=0.05", max_batch=1, max_attempts=1)
    generator = await remote()
    await generator.wait_for_workers(1, WAIT)
    running = await generator.submit(1, 10, req("running", steps=200))
    waiting = await generator.submit(2, 11, req("waiting"))
    async with asyncio.timeout(WAIT):
        async for event in running.events():
            if isinstance(event, Started):
                break
    client = connect(workers.url)
    try:  # the worker holds both: one runs, one waits in its own queue
        await until(
            lambda: _equals(_pending_of(client), (2, [b"doomed"])),
            "both entries delivered to the doomed worker",
        )
    finally:
        await client.aclose()
    workers.kill("doomed")
    workers.start("rescuer", model="fake:step=0.01", max_batch=1, max_attempts=1)
    poisoned, done = await outcome(running), await outcome(waiting)
    assert isinstance(poisoned, Failed)
    assert poisoned.error.code == "poison"
    assert isinstance(done, Done)


async def _pending_of(client: Any) -> tuple[int, list[bytes]]:
    """How many job entries are pending, and with which consumers."""
    reply = await client.xpending(KEYS.jobs, WORKERS_GROUP)
    return reply["pending"], [consumer["name"] for consumer in reply["consumers"]]


async def test_without_redis_submits_are_refused_and_the_bot_still_starts(tmp_path: Path) -> None:
    generator = RemoteGenerator(f"unix://{tmp_path}/none.sock", queue_size=4, max_backoff=0.2)
    await generator.start()  # does not raise: the bot runs and says generation is unavailable
    try:
        with pytest.raises(GeneratorUnavailableError, match="generation is unavailable"):
            await generator.submit(1, 10, req("nowhere"))
        status = await generator.status()
        assert not status.healthy
        assert status.detail.startswith("Redis is unreachable")
    finally:
        assert await generator.stop(timeout=0) == []


async def test_doctor_checks_redis_and_lists_the_workers(
    workers: Workers, remote: Remote, tmp_path: Path
) -> None:
    from bot.commands_cli.doctor import FAIL, OK, check_redis

    nobody = await asyncio.to_thread(check_redis, workers.url)
    assert nobody.status == FAIL
    assert "no generation worker is online" in nobody.detail
    workers.start("gpu-a", max_batch=3)
    generator = await remote()
    await generator.wait_for_workers(1, WAIT)
    found = await asyncio.to_thread(check_redis, workers.url)
    assert found.status == OK
    assert found.detail.endswith("1 worker online: gpu-a (cpu, batch 3)")
    gone = await asyncio.to_thread(check_redis, f"redis://:hunter2@{tmp_path.name}.invalid:1/0")
    assert gone.status == FAIL
    assert gone.detail.startswith(f"cannot reach redis://{tmp_path.name}.invalid:1/0")
    assert "hunter2" not in gone.detail
