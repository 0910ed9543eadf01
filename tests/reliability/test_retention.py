"""Prompts are kept no longer than POKEMON_RETENTION_DAYS: swept at start and while running."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.client import PokemonBot
from storage import NewJob, Storage
from tests.bot.conftest import BotRig
from tests.fakediscord import FakeDiscord


async def finished_job(path: object, *, days_ago: float, prompt: str) -> int:
    """A done job created `days_ago` days ago, written by a second connection."""
    then = datetime.now(UTC) - timedelta(days=days_ago)
    async with await Storage.open(path, clock=lambda: then) as store:  # type: ignore[arg-type]
        admission = await store.admit(
            NewJob(
                user_id=42,
                guild_id=None,
                channel_id=1,
                request={
                    "prompt": prompt,
                    "negative_prompt": "ぼやけ",
                    "seed": 1,
                    "steps": 3,
                    "guidance": 7.5,
                    "width": 64,
                    "height": 64,
                    "scheduler": "dpmpp-2m",
                },
            )
        )
        assert admission.job is not None
        await store.jobs.mark_done(admission.job.id)
        return admission.job.id


async def test_prompts_past_retention_are_blanked_at_start_and_recent_ones_kept(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    path = bot_rig.settings.pokemon_db
    old = await finished_job(path, days_ago=31, prompt="むかしの")
    recent = await finished_job(path, days_ago=29, prompt="さいきんの")
    async with bot_rig.run() as bot:
        old_row = await bot.store.jobs.get(old)
        recent_row = await bot.store.jobs.get(recent)
    assert old_row is not None
    assert recent_row is not None
    assert (old_row.request["prompt"], old_row.request["negative_prompt"]) == ("", "")
    assert old_row.state == "done"  # the row (and the count) stays
    assert recent_row.request["prompt"] == "さいきんの"


async def test_prompts_are_blanked_periodically_while_running(
    bot_rig: BotRig, fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PokemonBot, "retention_interval", 0.05)
    async with bot_rig.run() as bot:
        job_id = await finished_job(bot_rig.settings.pokemon_db, days_ago=40, prompt="あとから")

        async def blanked() -> bool:
            row = await bot.store.jobs.get(job_id)
            return row is not None and row.prompt_blanked

        for _ in range(600):  # polls the database; bounded so a broken sweep fails the test
            if await blanked():
                break
            await asyncio.sleep(0.02)
        assert await blanked()
