"""🔁 refusals that the end-to-end reaction tests do not reach: a worker stopped under a 🔁."""

from __future__ import annotations

from bot.i18n import t
from bot.messaging import REGENERATE_EMOJI
from tests.bot.conftest import BotRig, only_notice_for
from tests.fakediscord import FakeDiscord


async def test_regen_after_the_worker_stopped_says_shutting_down_not_queue_full(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        record = await fake_discord.invoke("pokemon", {"prompt": "ピカチュウ", "seed": 7})
        first = await bot_rig.wait_result(record)
        await fake_discord.wait_until(lambda: first.reaction_users(REGENERATE_EMOJI))
        # The worker stops (a fatal device error) a moment before the shutdown stops intake.
        await bot.generator.worker.stop(timeout=10)
        assert bot.service.accepting
        bob = fake_discord.bob
        await fake_discord.react(bob, first.channel_id, first.id, REGENERATE_EMOJI)

        notice = await only_notice_for(fake_discord, bob, first.channel_id)
        assert notice.content == f"<@{bob.id}> " + t("error.shutting_down", "en")
        (job,) = await bot.store.jobs.recent_for_user(bob.id)
        assert (job.state, job.error_code, job.fault) == ("failed", "worker_stopped", "rejected")
