"""The two "🎨 Vary" buttons under a result: a new picture from that picture, subtle (strength
0.35) or strong (0.65), for whoever pressed, posted as a reply, counted on the presser's quota.

They are `discord.ui.DynamicItem`s: the state (which strength, which job) lives in the button's
`custom_id` (`pokemon:vary:<subtle|strong>:<job id>`), so a button pressed after a restart
still works once `VaryButton` is registered (`bot.add_dynamic_items`, done by `setup` when this
module is loaded as an extension). The job service does the work (`JobService.vary`), exactly
as for a 🎨 reaction; a refusal (quota, a picture that is gone) is the short-lived channel
notice a reaction gets.

Plugging in: put `*vary_buttons(job_id, locale)` into the result message's view (the result
buttons' builder does that), and load this module with the other extensions.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import ui

from bot.i18n import language_of, t
from bot.messaging import VARY_EMOJI, send_ephemeral
from bot.service import ReactionOrigin
from bot.validation import VARY_STRONG, VARY_SUBTLE

if TYPE_CHECKING:
    from bot.client import PokemonBot

log = logging.getLogger(__name__)

STRENGTHS = {"subtle": VARY_SUBTLE, "strong": VARY_STRONG}
TEMPLATE = r"pokemon:vary:(?P<kind>subtle|strong):(?P<job>[0-9]{1,20})"


def vary_custom_id(kind: str, job_id: int) -> str:
    return f"pokemon:vary:{kind}:{job_id}"


class VaryButton(ui.DynamicItem[ui.Button[Any]], template=TEMPLATE):
    """One "🎨 Vary" button of one result; `kind` is `subtle` or `strong`."""

    def __init__(self, kind: str, job_id: int, label: str | None = None) -> None:
        super().__init__(
            ui.Button(
                label=label or t(f"vary.button.{kind}", "en"),
                emoji=VARY_EMOJI,
                style=discord.ButtonStyle.secondary,
                custom_id=vary_custom_id(kind, job_id),
            )
        )
        self.kind = kind
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> VaryButton:
        return cls(match["kind"], int(match["job"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: PokemonBot = interaction.client
        locale = language_of(interaction.locale)
        message = interaction.message
        job = await bot.store.jobs.get(self.job_id)
        if job is None or message is None or interaction.guild_id is None:
            # The job's row is gone (a deletion request): nothing to start from.
            await send_ephemeral(interaction, t("error.source_gone", locale))
            return
        # Acknowledge at once (the pressed message stays as it is); the picture comes as a
        # reply to it, or a refusal as a notice, like a 🎨 reaction.
        await interaction.response.defer()
        origin = ReactionOrigin(
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id or message.channel.id,
            message_id=message.id,
            parent=job,
            locale=locale,
        )
        await bot.service.vary(origin, STRENGTHS[self.kind])


def vary_buttons(job_id: int, locale: object) -> list[VaryButton]:
    """The two buttons for the result of `job_id`, labelled in the result's language."""
    return [VaryButton(kind, job_id, t(f"vary.button.{kind}", locale)) for kind in STRENGTHS]


async def setup(bot: PokemonBot) -> None:
    bot.add_dynamic_items(VaryButton)
