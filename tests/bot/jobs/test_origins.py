"""`bot.origins`: each origin shows and refuses for itself, and says who it is in the log.
The job layer never asks which origin it has; these are the differences it relies on."""

from __future__ import annotations

import dataclasses
import datetime as dt

import discord

from bot.messaging import Destination
from bot.origins import (
    REFUSAL_SECONDS,
    ButtonOrigin,
    CommandOrigin,
    ReactionOrigin,
    ResumedOrigin,
)
from generation.types import GenerationRequest
from storage import JobRecord
from tests.bot.jobs.fakes import FakeClient, FakeInteraction, FakeMessage, http_error

PARENT_MESSAGE = 900


def job_row(**changes: object) -> JobRecord:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    row = JobRecord(
        id=42,
        user_id=7,
        guild_id=100,
        channel_id=200,
        request={"prompt": "ピカチュウ"},
        images=1,
        locale="ja",
        state="queued",
        error_code=None,
        fault=None,
        outcome=None,
        cancelled_by=None,
        created_at=now,
        started_at=None,
        finished_at=None,
        interaction_expires_at=None,
        progress_message_id=None,
        result_message_id=PARENT_MESSAGE,
        parent_job_id=None,
        reply_to_message_id=None,
    )
    return dataclasses.replace(row, **changes)  # type: ignore[arg-type]


def reaction(**changes: object) -> ReactionOrigin:
    origin = ReactionOrigin(
        user_id=8,
        guild_id=100,
        channel_id=200,
        message_id=PARENT_MESSAGE,
        parent=job_row(),
        locale="en",
    )
    return dataclasses.replace(origin, **changes)  # type: ignore[arg-type]


REQUEST = GenerationRequest(prompt="ピカチュウ", seed=3)
IMG2IMG = dataclasses.replace(REQUEST, strength=0.65, init_image=b"png")


async def test_a_command_defers_first_and_then_refuses_privately_in_place_of_thinking() -> None:
    interaction = FakeInteraction()
    origin = CommandOrigin(interaction.as_interaction())
    await origin.prepare()
    assert interaction.response.deferred
    assert origin.shown_message_id == 555  # the original response, recorded with the row
    assert origin.deferred_public
    await origin.refuse(FakeClient().as_client(), "no")
    # A public "thinking…" cannot turn private: it goes, and a private followup says it.
    assert interaction.deleted_original
    assert interaction.followup.sent == [("no", True)]


async def test_a_button_refuses_privately_and_leaves_the_result_alone() -> None:
    interaction = FakeInteraction(message_id=PARENT_MESSAGE)
    interaction.response.done = True  # the router acknowledged the press
    origin = ButtonOrigin(interaction.as_interaction(), parent=job_row())
    await origin.prepare()
    assert origin.shown_message_id is None
    await origin.refuse(FakeClient().as_client(), "no")
    assert not interaction.deleted_original  # that is the result the button is under
    assert interaction.followup.sent == [("no", True)]
    assert origin.answers_duplicates  # a repeated press is told what is happening


async def test_a_reaction_refuses_with_a_short_lived_notice_that_pings_nobody() -> None:
    client = FakeClient()
    origin = reaction()
    await origin.refuse(client.as_client(), "no")
    ((content, sent),) = client.get_partial_messageable(200).sent
    assert content == "<@8> no"  # names the user
    assert sent["delete_after"] == REFUSAL_SECONDS
    assert sent["allowed_mentions"].users is False
    assert not origin.answers_duplicates  # a repeated reaction stays silent


async def test_a_resumed_job_is_refused_in_its_own_message_or_else_in_the_channel() -> None:
    client = FakeClient()
    channel = client.get_partial_messageable(200)
    origin = ResumedOrigin(job_row(progress_message_id=51, reply_to_message_id=PARENT_MESSAGE))
    await origin.refuse(client.as_client(), "too old")
    assert channel.get_partial_message(51).edits == [{"content": "<@7> too old", "view": None}]
    assert channel.sent == []
    channel.messages[51] = FakeMessage(51, edit_error=http_error(discord.NotFound, 404))
    await origin.refuse(client.as_client(), "too old")
    ((content, sent),) = channel.sent
    assert content == "<@7> too old"
    assert sent["reference"].message_id == PARENT_MESSAGE


def test_each_origin_says_who_it_is_in_the_log() -> None:
    interaction = FakeInteraction(message_id=PARENT_MESSAGE).as_interaction()
    assert CommandOrigin(interaction).describe() == "command"
    assert reaction().describe() == "reaction on job=42"
    assert ButtonOrigin(interaction, parent=job_row()).describe() == "button on job=42"
    assert ResumedOrigin(job_row()).describe() == "resumed job=42"


def test_a_command_row_is_charged_per_picture_and_shows_through_the_interaction() -> None:
    interaction = FakeInteraction()
    origin = CommandOrigin(interaction.as_interaction())
    row = origin.new_row(dataclasses.replace(REQUEST, count=3))
    assert (row.user_id, row.guild_id, row.channel_id, row.images) == (7, 100, 200, 3)
    assert row.locale == "ja"
    assert row.interaction_expires_at == interaction.expires_at
    assert row.parent_job_id is None
    dest = origin.destination(FakeClient().as_client())
    assert dest.interaction is interaction
    assert dest.handoff_text  # said in the original response when the job moves on


def test_a_new_picture_from_a_result_names_its_parent_and_replies_to_the_picture() -> None:
    row = reaction().new_row(REQUEST)
    assert (row.parent_job_id, row.reply_to_message_id) == (42, PARENT_MESSAGE)
    assert "source_picture" not in row.request
    # From picture 2 of a set (a 🎨 button): a later 🔁 reads that picture again.
    button = ButtonOrigin(
        FakeInteraction(message_id=PARENT_MESSAGE).as_interaction(), parent=job_row(), picture=2
    )
    assert button.new_row(IMG2IMG).request["source_picture"] == 2
    assert button.destination(FakeClient().as_client()) == Destination(
        channel_id=200, guild_id=100, reply_to=PARENT_MESSAGE
    )


def test_a_resumed_job_continues_in_the_message_its_user_has() -> None:
    origin = ResumedOrigin(job_row(progress_message_id=51))
    dest = origin.destination(FakeClient().as_client())
    assert dest.message is not None
    assert dest.message.id == 51
    assert dest.reply_to == 51  # a fallback reply points at what the user saw
    assert origin.resumed
    assert origin.locale == "ja"
