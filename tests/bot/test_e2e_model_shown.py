"""The model named under a picture is the one that drew it: the result embed takes it from the
result (a remote worker may run another model than the bot's setting), the job's outcome keeps
it, and ℹ️ reads it from there after the setting changed. Rows from before fall back to the
setting."""

from __future__ import annotations

import contextlib
import sqlite3

from tests.bot.conftest import BotRig
from tests.bot.test_e2e_buttons import custom_id, first_result, job_id_of, private_answer
from tests.fakediscord import FakeDiscord

DREW_IT = "someone/the-model-that-drew-it"
LATER = "someone/the-setting-of-today"


async def test_the_embed_and_info_name_the_model_that_drew_the_picture(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    bot_rig.engine.model = DREW_IT  # the engine runs another model than the setting names
    assert bot_rig.settings.pokemon_model != DREW_IT
    async with bot_rig.run() as bot:
        result = await first_result(bot_rig, fake)
        fields = {f["name"]: f["value"] for f in result.embeds[0]["fields"]}
        assert fields["Model"] == DREW_IT
        job = await bot.store.jobs.get(job_id_of(result))
        assert job is not None
        assert job.outcome is not None
        assert job.outcome["model"] == DREW_IT

    # The setting changes (a new model is deployed); the picture was still drawn by DREW_IT.
    bot_rig.settings = bot_rig.settings.model_copy(update={"pokemon_model": LATER})
    async with bot_rig.run():
        info = await fake.press(result, custom_id("info", job_id_of(result)), user=fake.bob)
        details = await private_answer(info)
        assert f"Model: {DREW_IT}" in details
        assert LATER not in details

    # A row stored before jobs kept their model: ℹ️ names the setting, as it always did.
    with contextlib.closing(sqlite3.connect(bot_rig.settings.pokemon_db)) as db, db:
        db.execute("UPDATE jobs SET outcome = json_remove(outcome, '$.model')")
    async with bot_rig.run() as bot:
        job = await bot.store.jobs.get(job_id_of(result))
        assert job is not None
        assert job.outcome is not None
        assert "model" not in job.outcome
        info = await fake.press(result, custom_id("info", job_id_of(result)), user=fake.bob)
        assert f"Model: {LATER}" in await private_answer(info)
