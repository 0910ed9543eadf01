"""The real process, `python -m bot run`, against the loopback fake Discord in this test's
event loop (reached through POKEMON_DISCORD_API_BASE, the test-only hook in `bot/app.py`)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.i18n import t
from storage import Storage
from tests.bot.conftest import TINY_MODEL, BotRig
from tests.fakediscord import FakeDiscord, InteractionRecord

ROOT = Path(__file__).resolve().parents[2]
GRACE_PERIOD = 60.0  # docker-compose.yml's stop_grace_period: the supervisor's kill deadline
START_WITHIN = 120.0  # imports torch and loads the model on a shared CPU: a hang guard only


def bot_env(fake: FakeDiscord, db: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN" and not k.startswith("POKEMON_")
    }
    settings = {
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "DISCORD_TOKEN": fake.token,
        "POKEMON_DISCORD_API_BASE": fake.api_base,
        "POKEMON_MODEL": str(TINY_MODEL),
        "POKEMON_DEVICE": "cpu",
        "POKEMON_SIZE": "64",
        "POKEMON_STEPS": "3",
        "POKEMON_SAFETY_CHECKER": "off",
        "POKEMON_DB": str(db),
        "POKEMON_QUEUE_SIZE": "3",
        "POKEMON_USER_MAX_PENDING": "2",
    }
    return {**env, **settings, **extra}


async def start_bot(tmp_path: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    log = (tmp_path / "bot.log").open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env, stdout=log, stderr=log
    )


async def test_sigterm_with_a_full_queue_exits_0_and_every_job_is_delivered_or_kept(
    fake_discord: FakeDiscord, tmp_path: Path, bot_rig: BotRig
) -> None:
    fake = fake_discord
    db = tmp_path / "bot.sqlite3"
    proc = await start_bot(tmp_path, bot_env(fake, db))
    try:
        await fake.wait_until(
            lambda: fake.sync_count() >= 1 and fake.gateway.live_sessions(), START_WITHIN
        )
        await asyncio.sleep(0.2)  # let the client finish reading READY and the guild
        users = [fake.alice, fake.bob, fake.moderator]
        records: list[InteractionRecord] = []
        for n in range(6):  # 1 running + a queue of 3 + refusals for a full queue
            records.append(
                await fake.invoke(
                    "pokemon", {"prompt": f"ピカチュウ {n}", "steps": 50}, user=users[n % 3]
                )
            )
        await fake.wait_until(lambda: all(r.responded for r in records), 30)
        await fake.wait_until(lambda: all(r.edits or r.followups for r in records), 30)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), GRACE_PERIOD)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = (tmp_path / "bot.log").read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "SIGTERM received" in output
    assert "Traceback" not in output

    async with await Storage.open(db) as store:
        jobs = [job for user in users for job in await store.jobs.recent_for_user(user.id)]
        pending = await store.jobs.pending()
    refused = [r for r in records if r.followups]
    for record in refused:
        assert record.followups[0].content == t("error.queue_full", "en", size=3)
    # Every accepted job is delivered or still on disk to resume; none was failed or lost.
    accepted = [j for j in jobs if j.fault != "rejected"]
    assert len(accepted) == len(records) - len(refused)
    assert {j.state for j in accepted} <= {"done", "queued", "running"}
    assert {j.id for j in accepted if j.state != "done"} == {j.id for j in pending}
    delivered = [m for m in fake.bot_messages() if m.attachments]
    assert len(delivered) == sum(j.state == "done" for j in accepted)

    # The next start (in-process here) finishes the ones the SIGTERM left behind.
    # The same limits as the process that admitted them (a lower POKEMON_MAX_STEPS now would
    # refuse them: see tests/bot/test_service.py).
    bot_rig.settings = bot_rig.settings.model_copy(
        update={"pokemon_db": db, "pokemon_max_steps": 50}
    )
    async with bot_rig.run() as bot:
        # Each job's message is read back after READY before it is queued again: wait for the
        # pictures, not for an empty `active` (empty too before the read-back ends).
        await fake.wait_until(
            lambda: len([m for m in fake.bot_messages() if m.attachments]) == len(accepted), 60
        )
        await fake.wait_until(lambda: not bot.service.active, 60)
        assert await bot.store.jobs.pending() == []
        for job in pending:
            row = await bot.store.jobs.get(job.id)
            assert row is not None
            assert row.state == "done", (row.state, row.error_code)
    assert len([m for m in fake.bot_messages() if m.attachments]) == len(accepted)


async def test_a_model_that_will_not_load_exits_non_zero_before_connecting(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"
    proc = await start_bot(
        tmp_path, bot_env(fake_discord, tmp_path / "db.sqlite3", POKEMON_MODEL=str(missing))
    )
    code = await asyncio.wait_for(proc.wait(), START_WITHIN)
    output = (tmp_path / "bot.log").read_text(errors="replace")
    assert code == 2
    assert output.strip().splitlines()[-1].startswith(f"pokemon-bot run: model {missing}:")
    assert "Traceback" not in output
    assert fake_discord.gateway.identify_count == 0  # never logged in
    assert fake_discord.requests == []  # not even a REST call
