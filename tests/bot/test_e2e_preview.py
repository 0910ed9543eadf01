"""Live previews end to end: a job of a few seconds (each step of the tiny checkpoint slowed on
the worker thread) shows a preview of its picture in its progress edits, over the loopback
Discord; the final picture replaces it; POKEMON_PREVIEW=off sends none; a ✖ takes it away."""

from __future__ import annotations

import io
import itertools

from PIL import Image

from bot.custom_ids import custom_id
from bot.messaging import PREVIEW_FILENAME, PROGRESS_INTERVAL, RESULT_FILENAME
from generation.preview import PREVIEW_INTERVAL_SECONDS, PreviewPacing
from tests.bot.conftest import BotRig
from tests.fakediscord import FakeDiscord
from tests.fakediscord.interactions import EditRecord

STEPS = 10
STEP_SECONDS = 0.3  # a job of about 3 s, as on a slow device


def slow_job(bot_rig: BotRig, *, preview: str = "on") -> None:
    bot_rig.settings = bot_rig.settings.model_copy(
        update={"pokemon_preview": preview, "pokemon_steps": STEPS}
    )
    bot_rig.engine.step_seconds = STEP_SECONDS
    bot_rig.preview_pacing = PreviewPacing(start_after=0.5, interval=0.5)


def uploaded_previews(edits: list[EditRecord]) -> list[bytes]:
    """The preview files the edits uploaded, in order."""
    return [f.data for e in edits for f in e.files if f.filename == PREVIEW_FILENAME]


def test_the_preview_interval_is_the_bots_edit_interval() -> None:
    assert PREVIEW_INTERVAL_SECONDS == PROGRESS_INTERVAL


async def test_a_job_of_a_few_seconds_shows_a_preview_then_the_picture_replaces_it(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    slow_job(bot_rig)
    async with bot_rig.run():
        record = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "seed": 5})
        result = await bot_rig.wait_result(record)

    final = next(i for i, e in enumerate(record.edits) if e.embeds)
    progress = record.edits[:final]
    shown = [e for e in progress if any(a.filename == PREVIEW_FILENAME for a in e.attachments)]
    assert shown, [(e.content, [a.filename for a in e.attachments]) for e in record.edits]
    assert all("/" in e.content for e in shown)  # a progress edit, with its text
    preview = Image.open(io.BytesIO(shown[0].attachments[0].data))
    assert preview.format == "JPEG"
    assert preview.size == (128, 128)
    # Only a new preview is uploaded: text edits in between keep the one shown.
    uploads = uploaded_previews(progress)
    assert all(a != b for a, b in itertools.pairwise(uploads))
    assert len(uploads) < len(progress)
    # The final picture replaced it.
    assert [a.filename for a in result.attachments] == [RESULT_FILENAME]
    assert [a.filename for a in record.edits[final].attachments] == [RESULT_FILENAME]


async def test_with_previews_off_no_edit_carries_one(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    slow_job(bot_rig, preview="off")
    async with bot_rig.run():
        record = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "seed": 5})
        result = await bot_rig.wait_result(record)

    assert len(record.edits) > 2  # progress was shown, step by step
    assert not any(e.files or e.attachments for e in record.edits if not e.embeds)
    assert [a.filename for a in result.attachments] == [RESULT_FILENAME]


async def test_a_job_cancelled_after_a_preview_keeps_no_preview(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    slow_job(bot_rig)
    bot_rig.engine.step_seconds = 1.0  # long enough to press ✖ after the first preview
    async with bot_rig.run() as bot:
        record = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "seed": 5})
        await fake_discord.wait_until(lambda: uploaded_previews(record.edits), 30)
        message = record.original_message
        assert message is not None
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        await fake_discord.press(message, custom_id("cancel", job.id))
        await fake_discord.wait_until(
            lambda: message.component(custom_id("cancel", job.id)) is None
        )
        await fake_discord.wait_until(lambda: not message.attachments)
        assert (await bot.store.jobs.get(job.id)).state == "cancelled"  # type: ignore[union-attr]
