"""The buttons under results and queued jobs, end to end: the real bot and worker against the
loopback fake Discord. Who may press what, a press after a restart, cancel, ℹ️'s command line,
the PNG's `parameters` chunk, a queue that moves, `/queue`, /pokemon's Integrations settings
obeyed by 🔁, and `/blocklist`."""

from __future__ import annotations

import asyncio
import re

import pytest

from bot.buttons import cancel_buttons, custom_id, result_buttons
from bot.client import PokemonBot
from bot.i18n import t
from bot.jobs import new_job
from bot.messaging import REGENERATE_EMOJI
from generation.types import GenerationRequest
from tests.bot.conftest import BotRig, only_notice_for, png_of
from tests.fakediscord import FakeDiscord, FakeMessage, InteractionRecord
from tests.reliability.test_faults import WriteLock

CHANNEL_TYPE = 3


def job_id_of(message: FakeMessage) -> int:
    """The job a message's buttons belong to (read from their custom_id)."""
    for row in message.components:
        for component in row.get("components", []):
            found = re.fullmatch(r"pkmn:[a-z]+:([0-9]+)(?::.*)?", component.get("custom_id", ""))
            if found:
                return int(found[1])
    raise AssertionError(f"message {message.id} has no job buttons")


async def first_result(
    bot_rig: BotRig, fake: FakeDiscord, prompt: str = "ピカチュウ", seed: int = 7
) -> FakeMessage:
    record = await fake.invoke("pokemon", {"prompt": prompt, "seed": seed}, user=fake.alice)
    result = await bot_rig.wait_result(record)
    await fake.wait_until(lambda: result.reaction_users(REGENERATE_EMOJI))
    return result


def replies_to(fake: FakeDiscord, message: FakeMessage) -> list[FakeMessage]:
    return [
        m
        for m in fake.bot_messages(message.channel_id)
        if m.message_reference
        and int(m.message_reference["message_id"]) == message.id
        and not m.ephemeral  # private answers to a press on `message`
    ]


def drawn(fake: FakeDiscord, first: FakeMessage) -> bool:
    """A variation replying to `first` is posted and recorded (its 🔁 comes after that)."""
    return any(
        m.attachments and m.reaction_users(REGENERATE_EMOJI) for m in replies_to(fake, first)
    )


async def private_answer(record: InteractionRecord) -> str:
    (followup,) = await record.wait_followups(1)
    assert followup.ephemeral
    return followup.content


async def test_a_result_carries_new_variation_details_and_delete_buttons(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run() as bot:
        result = await first_result(bot_rig, fake_discord)
        (job,) = await bot.store.jobs.recent_for_user(fake_discord.alice.id)
        for action in ("regen", "info", "delete"):
            assert result.component(custom_id(action, job.id)) is not None
        assert result.component(custom_id("cancel", job.id)) is None  # gone with the progress
        # Reactions work as before: the bot's own 🔁 is still there.
        assert result.reaction_users(REGENERATE_EMOJI) == [fake_discord.bot_user.id]
        fields = {f["name"]: f["value"] for f in result.embeds[0]["fields"]}
        assert fields["Seed"] == "7"
        assert fields["Steps"] == "3"
        assert fields["Guidance"] == "7.5"
        assert fields["Sampler"] == "DPM++ 2M Karras"
        assert fields["Size"] == "64×64"
        assert fields["Model"].endswith("tiny-pokemon-ja")


async def test_new_variation_button_by_another_member_replies_with_a_new_picture(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake)
        parent = job_id_of(first)
        bot_rig.engine.close_gate()
        press = await fake.press(first, custom_id("regen", parent), user=fake.bob)
        await fake.wait_until(lambda: replies_to(fake, first))
        # A second press while it is drawing: one job, and a private word to the presser.
        again = await fake.press(first, custom_id("regen", parent), user=fake.bob)
        assert await private_answer(again) == t("regen.already_pending", "en")
        bot_rig.engine.open_gate()
        await fake.wait_until(lambda: drawn(fake, first), 30)
        (second,) = replies_to(fake, first)
        assert press.callbacks[0].type == 6  # acknowledged without a visible change
        assert png_of(second).size == (64, 64)
        (child,) = await bot.store.jobs.recent_for_user(fake.bob.id)
        assert child.parent_job_id == parent
        assert child.request["seed"] != 7
        assert second.component(custom_id("regen", child.id)) is not None
        bob = await bot.store.limits.quota(fake.guild.id, fake.bob.id)
        assert bob.used == 1


async def test_six_quick_presses_of_new_variation_draw_one_picture_and_answer_the_other_five(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    """Every press is answered: the first starts the variation, each repeat is told privately
    that it is being drawn (with its place once it is queued), and one picture comes."""
    fake = fake_discord
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake)
        parent = job_id_of(first)
        bot_rig.engine.close_gate()
        # Alice's next picture holds the worker, so Bob's variation waits in the queue.
        await fake.invoke("pokemon", {"prompt": "ゼニガメ"}, user=fake.alice)
        await fake.wait_until(lambda: bot_rig.engine.calls == 2, 30)
        presses = await asyncio.gather(
            *(fake.press(first, custom_id("regen", parent), user=fake.bob) for _ in range(6))
        )
        await fake.wait_until(lambda: all(p.callbacks for p in presses), 10)
        assert all(p.callbacks[0].type == 6 for p in presses)  # each acknowledged
        await fake.wait_until(lambda: sum(bool(p.followup_ids) for p in presses) == 5, 30)
        assert sum(not p.followup_ids for p in presses) == 1  # the press that started it
        answers = [await private_answer(p) for p in presses if p.followup_ids]
        place = t("regen.already_pending_place", "en", position=1)
        assert set(answers) <= {t("regen.already_pending", "en"), place}
        # Once it shows its place (its row is written before that), a further press is told
        # that place. The repeats may be answered while the first press is still admitting it.
        await fake.wait_until(lambda: replies_to(fake, first), 30)
        (child,) = await bot.store.jobs.recent_for_user(fake.bob.id)
        later = await fake.press(first, custom_id("regen", parent), user=fake.bob)
        assert await private_answer(later) == place
        bot_rig.engine.open_gate()
        await fake.wait_until(lambda: drawn(fake, first), 30)
        assert len(replies_to(fake, first)) == 1
        assert [job.id for job in await bot.store.jobs.recent_for_user(fake.bob.id)] == [child.id]


async def test_delete_button_refused_for_others_privately_and_works_for_the_requester(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run():
        first = await first_result(bot_rig, fake)
        delete = custom_id("delete", job_id_of(first))
        refused = await fake.press(first, delete, user=fake.bob)
        assert await private_answer(refused) == t("button.delete_refused", "en")
        assert not first.deleted
        await fake.press(first, delete, user=fake.alice, locale="ja")
        await fake.wait_until(lambda: first.deleted)


async def test_delete_button_works_for_a_server_manager(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run():
        first = await first_result(bot_rig, fake)
        await fake.press(first, custom_id("delete", job_id_of(first)), user=fake.moderator)
        await fake.wait_until(lambda: first.deleted)


async def test_details_answer_privately_and_their_command_line_draws_the_same_png(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run():
        record = await fake.invoke(
            "pokemon",
            {"prompt": "青い炎の猫", "negative": "ぼやけた", "seed": 4242, "guidance": 6.5},
            user=fake.alice,
        )
        first = await bot_rig.wait_result(record)
        press = await fake.press(first, custom_id("info", job_id_of(first)), user=fake.bob)
        details = await private_answer(press)
        for shown in ("4242", "DPM++ 2M Karras", "64×64", "6.5"):
            assert shown in details
        line = re.search(r"```\n(/pokemon .*)\n```", details)
        assert line is not None
        options = parse_command_line(line[1])
        assert options == {
            "prompt": "青い炎の猫",
            "negative": "ぼやけた",
            "seed": 4242,
            "steps": 3,
            "guidance": 6.5,
        }
        again = await fake.invoke("pokemon", options, user=fake.bob)
        second = await bot_rig.wait_result(again)
        assert second.attachments[0].data == first.attachments[0].data


def parse_command_line(line: str) -> dict[str, object]:
    """`/pokemon prompt:… negative:… seed:…` as the Discord client would fill the options."""
    assert line.startswith("/pokemon ")
    parts = re.split(
        r" (?=(?:prompt|negative|seed|steps|guidance|size|count|strength|translate):)",
        line.removeprefix("/pokemon "),
    )
    options: dict[str, object] = {}
    for part in parts:
        name, value = part.split(":", 1)
        options[name] = (
            int(value)
            if name in ("seed", "steps", "count")
            else (float(value) if name in ("guidance", "strength") else value)
        )
    return options


async def test_each_png_carries_its_parameters_in_the_web_uis_format(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run():
        result = await first_result(bot_rig, fake_discord, prompt="ゼニガメ", seed=123)
        image = png_of(result)
        assert image.text["parameters"] == (  # pyright: ignore[reportAttributeAccessIssue]
            "ゼニガメ\n"
            "Steps: 3, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 123, Size: 64x64, "
            f"Model: {bot_rig.settings.pokemon_model}"
        )


async def test_buttons_pressed_after_a_restart_still_work(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run():
        first = await first_result(bot_rig, fake)
    async with bot_rig.run() as bot:  # a new process on the same database
        parent = job_id_of(first)
        info = await fake.press(first, custom_id("info", parent), user=fake.bob)
        assert "```\n/pokemon prompt:ピカチュウ" in await private_answer(info)
        await fake.press(first, custom_id("regen", parent), user=fake.bob)
        await fake.wait_until(lambda: drawn(fake, first), 30)
        (child,) = await bot.store.jobs.recent_for_user(fake.bob.id)
        assert (child.parent_job_id, child.state) == (parent, "done")


async def test_cancel_a_queued_and_a_running_job_leaves_the_quota_unchanged(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        bot_rig.engine.close_gate()
        running = await fake.invoke("pokemon", {"prompt": "いち"}, user=fake.alice)
        await fake.wait_until(lambda: bot.generator.worker.running == 1, 30)
        queued = await fake.invoke("pokemon", {"prompt": "に"}, user=fake.alice)

        def has_cancel(record: InteractionRecord) -> bool:
            message = record.original_message
            return message is not None and any(
                c.get("custom_id", "").startswith("pkmn:cancel:")
                for row in message.components
                for c in row.get("components", [])
            )

        await fake.wait_until(lambda: has_cancel(queued) and has_cancel(running))
        queued_message, running_message = queued.original_message, running.original_message
        assert queued_message is not None
        assert running_message is not None
        queued_id, running_id = job_id_of(queued_message), job_id_of(running_message)

        refused = await fake.press(queued_message, custom_id("cancel", queued_id), user=fake.bob)
        assert await private_answer(refused) == t("button.cancel_refused", "en")

        await fake.press(queued_message, custom_id("cancel", queued_id), user=fake.alice)
        cancelled_text = t("job.cancelled_by", "en", user=f"<@{fake.alice.id}>")
        await fake.wait_until(lambda: queued_message.content == cancelled_text)
        assert queued_message.components == []
        # An admin cancels the running one; it stops at its first step, nothing is decoded.
        await fake.press(running_message, custom_id("cancel", running_id), user=fake.moderator)
        bot_rig.engine.open_gate()
        by_moderator = t("job.cancelled_by", "en", user=f"<@{fake.moderator.id}>")
        await fake.wait_until(lambda: running_message.content == by_moderator, 30)
        assert not running_message.attachments

        jobs = {job.id: job for job in await bot.store.jobs.recent_for_user(fake.alice.id)}
        assert (jobs[queued_id].state, jobs[queued_id].cancelled_by) == ("cancelled", fake.alice.id)
        assert (jobs[running_id].state, jobs[running_id].cancelled_by) == (
            "cancelled",
            fake.moderator.id,
        )
        quota = await bot.store.limits.quota(fake.guild.id, fake.alice.id)
        assert quota.used == 0
        # Too late now: the job is over (its button went with the message's buttons).
        assert not await bot.service.cancel(running_id, fake.alice.id)


async def test_a_queued_place_goes_down_as_the_jobs_ahead_finish(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        bot_rig.engine.hold_each()
        records = [
            await fake.invoke("pokemon", {"prompt": f"{n}ばんめ"}, user=user)
            for n, user in enumerate((fake.alice, fake.bob, fake.moderator), start=1)
        ]
        third = records[2]

        def third_says(position: int) -> bool:
            message = third.original_message
            return message is not None and f"position **{position}**" in message.content

        await fake.wait_until(lambda: third_says(2), 30)
        # /queue while the third waits at place 2: the moderator's own job and the totals.
        queue = await fake.invoke("queue", {}, user=fake.moderator)
        await queue.wait_response()
        answer = queue.original_message
        assert answer is not None
        assert answer.ephemeral
        assert f"#{job_id_of(third.original_message)}: position **2**" in answer.content  # type: ignore[arg-type]
        assert "2 pictures waiting in all" in answer.content
        assert "1 being drawn now" in answer.content

        bot_rig.engine.let_through(1)  # the first finishes; the second starts
        await fake.wait_until(lambda: third_says(1), 30)
        bot_rig.engine.open_gate()
        for record in records:
            await bot_rig.wait_result(record)
        assert bot.generator.worker.running == 0


async def test_queue_with_nothing_waiting_says_so_privately(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    async with bot_rig.run():
        queue = await fake_discord.invoke("queue", {}, user=fake_discord.bob, locale="ja")
        await queue.wait_response()
        answer = queue.original_message
        assert answer is not None
        assert answer.ephemeral
        assert t("queue.none", "ja") in answer.content
        assert t("queue.total", "ja", count=0) in answer.content


async def test_new_variation_obeys_pokemons_integrations_settings_for_the_channel(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake)
        parent = job_id_of(first)
        # Allowed at first (the permissions are read and cached): bob's 🔁 draws.
        await fake.press(first, custom_id("regen", parent), user=fake.bob)
        await fake.wait_until(lambda: drawn(fake, first), 30)
        # An admin turns /pokemon off in this channel: the gateway event refreshes the cache.
        await fake.set_command_permissions(
            fake.guild,
            "pokemon",
            [{"id": first.channel_id, "type": CHANNEL_TYPE, "permission": False}],
        )
        await fake.wait_for_event("APPLICATION_COMMAND_PERMISSIONS_UPDATE")
        disabled = t("error.command_disabled", "en")

        press = await fake.press(first, custom_id("regen", parent), user=fake.moderator)
        assert await private_answer(press) == disabled
        info = await fake.press(first, custom_id("info", parent), user=fake.moderator)
        assert await private_answer(info) == disabled

        await fake.react(fake.moderator, first.channel_id, first.id, REGENERATE_EMOJI)

        refusal = await only_notice_for(fake, fake.moderator, first.channel_id)
        assert disabled in refusal.content
        assert refusal.pings() == set()
        assert await bot.store.jobs.recent_for_user(fake.moderator.id) == []
        assert len([m for m in replies_to(fake, first) if m.attachments]) == 1  # bob's


async def test_blocklist_catches_a_word_in_full_width_half_width_and_hiragana(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        first = await first_result(bot_rig, fake, prompt="かわいいピカチュウ")
        not_admin = await fake.invoke("blocklist add", {"word": "ピカチュウ"}, user=fake.bob)
        await not_admin.wait_response()
        assert not_admin.original_message is not None
        assert not_admin.original_message.content == t("error.not_allowed", "en")

        added = await fake.invoke("blocklist add", {"word": "ピカチュウ"}, user=fake.moderator)
        await added.wait_response()
        assert added.original_message is not None
        assert added.original_message.ephemeral
        audit = await bot.store.blocklist.audit(fake.guild.id)
        assert [(a.action, a.word, a.actor_id) for a in audit] == [
            ("add", "ぴかちゅう", fake.moderator.id)
        ]

        refused_text = t("error.prompt_blocked", "en")
        for prompt, negative in (("ピカチュウ", None), ("ﾋﾟｶﾁｭｳのえ", None), ("ねこ", "ぴかちゅう")):
            options = {"prompt": prompt} | ({"negative": negative} if negative else {})
            record = await fake.invoke("pokemon", options, user=fake.alice)
            assert await private_answer(record) == refused_text
        # A 🔁 of the earlier picture is refused too, privately, without the word.
        press = await fake.press(first, custom_id("regen", job_id_of(first)), user=fake.bob)
        assert await private_answer(press) == refused_text
        assert await bot.store.jobs.recent_for_user(fake.bob.id) == []
        quota = await bot.store.limits.quota(fake.guild.id, fake.alice.id)
        assert quota.used == 1  # only the first picture

        shown = await fake.invoke("blocklist show", {}, user=fake.moderator)
        await shown.wait_response()
        assert shown.original_message is not None
        assert "- ぴかちゅう" in shown.original_message.content
        assert f"<@{fake.moderator.id}> blocked ぴかちゅう" in shown.original_message.content
        removed = await fake.invoke("blocklist remove", {"word": "ﾋﾟｶﾁｭｳ"}, user=fake.moderator)
        await removed.wait_response()
        assert await bot.store.blocklist.words(fake.guild.id) == []
        record = await fake.invoke("pokemon", {"prompt": "ピカチュウ"}, user=fake.alice)
        await bot_rig.wait_result(record)


async def _leave_a_queued_job_on_disk(
    bot_rig: BotRig, fake: FakeDiscord, prompt: str, *, block: str | None = None
) -> InteractionRecord:
    """Run the bot with alice's job drawing and bob's `prompt` queued, then shut down: bob's
    job stays queued on disk for the next start (with `block` added to the blocklist first)."""
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        await fake.invoke("pokemon", {"prompt": "さき"}, user=fake.alice)
        await fake.wait_until(lambda: bot.generator.worker.running == 1, 30)
        queued = await fake.invoke("pokemon", {"prompt": prompt}, user=fake.bob)
        await queued.wait_edits(1)  # "Queued: position 1", with ✖
        if block is not None:
            await bot.store.blocklist.add(fake.guild.id, block, actor_id=fake.moderator.id)
        bot.request_shutdown()
        bot_rig.engine.open_gate()
        await bot.wait_shutdown()
        assert len(await bot.store.jobs.pending()) == 1
    return queued


async def test_cancel_pressed_after_a_restart_stops_the_resumed_job(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    queued = await _leave_a_queued_job_on_disk(bot_rig, fake, "あと")
    message = fake.messages[queued.original_message_id]
    job_id = job_id_of(message)
    bot_rig.engine.close_gate()
    async with bot_rig.run() as bot:
        await fake.wait_until(lambda: job_id in bot.service.active, 30)
        await fake.press(message, custom_id("cancel", job_id), user=fake.bob)
        bot_rig.engine.open_gate()
        cancelled = t("job.cancelled_by", "en", user=f"<@{fake.bob.id}>")
        await fake.wait_until(lambda: message.content == cancelled, 30)
        row = await bot.store.jobs.get(job_id)
        assert row is not None
        assert (row.state, row.cancelled_by) == ("cancelled", fake.bob.id)
        assert not message.attachments
        quota = await bot.store.limits.quota(fake.guild.id, fake.bob.id)
        assert quota.used == 0


async def test_cancel_of_a_job_no_generator_holds_marks_it_cancelled_on_disk(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        # A row left queued that nothing follows (as after a restart that did not resume it).
        admission = await bot.store.admit(
            new_job(
                GenerationRequest(prompt="のこり"),
                user_id=fake.alice.id,
                guild_id=fake.guild.id,
                channel_id=fake.channel.id,
                locale="en",
            )
        )
        assert admission.job is not None
        assert await bot.service.cancel(admission.job.id, fake.owner.id)
        row = await bot.store.jobs.get(admission.job.id)
        assert row is not None
        assert (row.state, row.cancelled_by) == ("cancelled", fake.owner.id)
        assert not await bot.service.cancel(admission.job.id, fake.owner.id)  # once


async def _job_with_a_cancel_button(bot: PokemonBot, fake: FakeDiscord) -> tuple[int, FakeMessage]:
    """A queued row no generator holds (as after a restart that did not resume it) and a
    message of the bot carrying its ✖, so a press has to write the row itself."""
    admission = await bot.store.admit(
        new_job(
            GenerationRequest(prompt="のこり"),
            user_id=fake.alice.id,
            guild_id=fake.guild.id,
            channel_id=fake.channel.id,
            locale="en",
        )
    )
    assert admission.job is not None
    channel = bot.get_partial_messageable(fake.channel.id, guild_id=fake.guild.id)
    posted = await channel.send("…", view=cancel_buttons(admission.job.id, "en"))
    return admission.job.id, fake.messages[posted.id]


async def test_a_press_the_busy_database_refuses_is_answered_privately_and_works_later(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        job_id, message = await _job_with_a_cancel_button(bot, fake)
        # Another process holds the write lock past every retry: the press's write fails.
        await bot.store.db.connection.execute("PRAGMA busy_timeout = 0")
        lock = WriteLock(bot.store.path)
        await lock.hold()
        try:
            press = await fake.press(message, custom_id("cancel", job_id), user=fake.alice)
            assert await private_answer(press) == t("error.storage_unavailable", "en")
            assert bot.store.db.busy_retries >= 1
        finally:
            await lock.release()
        row = await bot.store.jobs.get(job_id)
        assert row is not None
        assert row.state == "queued"
        # The database is free again: the same button works, and the bot never stopped.
        await fake.press(message, custom_id("cancel", job_id), user=fake.alice)
        async with asyncio.timeout(30):
            while True:  # a row on disk: poll it
                row = await bot.store.jobs.get(job_id)
                if row is not None and row.state == "cancelled":
                    break
                await asyncio.sleep(0.05)


async def test_a_press_whose_handler_fails_unexpectedly_gets_an_error_id_the_log_has(
    bot_rig: BotRig, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_discord
    async with bot_rig.run() as bot:
        job_id, message = await _job_with_a_cancel_button(bot, fake)

        async def broken(job_id: int, by_user_id: int) -> bool:
            raise RuntimeError("a bug in cancel")

        bot.service.cancel = broken  # a bug: nothing the handler expects
        press = await fake.press(message, custom_id("cancel", job_id), user=fake.alice)
        answer = await private_answer(press)
        found = re.fullmatch(
            re.escape(t("error.unexpected", "en", error_id="ID")).replace("ID", "([0-9a-f]+)"),
            answer,
        )
        assert found is not None, answer
        (logged,) = [r for r in caplog.records if found[1] in r.getMessage()]
        assert f"button cancel on job={job_id}" in logged.getMessage()
        assert logged.exc_info is not None
        assert "a bug in cancel" in str(logged.exc_info[1])


async def test_a_job_resumed_after_a_restart_obeys_a_word_blocked_meanwhile(
    bot_rig: BotRig, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    queued = await _leave_a_queued_job_on_disk(bot_rig, fake, "ﾋﾟｶﾁｭｳのえ", block="ぴかちゅう")
    message = fake.messages[queued.original_message_id]
    job_id = job_id_of(message)
    calls = bot_rig.engine.calls
    async with bot_rig.run() as bot:
        refused = t("error.prompt_blocked", "en")
        await fake.wait_until(lambda: refused in (message.content or ""), 30)
        row = await bot.store.jobs.get(job_id)
        assert row is not None
        assert (row.state, row.error_code, row.fault) == ("failed", "prompt_blocked", "rejected")
        assert bot_rig.engine.calls == calls  # never drawn
        assert message.components == []


def test_result_buttons_fit_discords_rows_for_one_picture_and_for_a_set_of_four() -> None:
    def rows(pictures: int) -> list[list[str]]:
        view = result_buttons(7, "en", pictures=pictures)
        return [[c["custom_id"] for c in row["components"]] for row in view.to_components()]

    assert rows(1) == [
        [
            "pkmn:regen:7",
            "pkmn:info:7",
            "pkmn:delete:7",
            "pkmn:vary:7:subtle",
            "pkmn:vary:7:strong",
        ],
        ["pkmn:up:7"],  # the first row is full: ⬆️ on a second
    ]
    assert rows(4) == [
        ["pkmn:regen:7", "pkmn:info:7", "pkmn:delete:7"],
        [f"pkmn:vary:7:subtle{n}" for n in range(1, 5)],
        [f"pkmn:vary:7:strong{n}" for n in range(1, 5)],
        [f"pkmn:up:7:{n}" for n in range(1, 5)],
    ]
