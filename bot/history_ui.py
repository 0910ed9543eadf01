"""`/history`: a user's last pictures in this server, privately, paged with buttons.

The page text is `bot.history_text`; here is the embed around it, the ◀ ▶ buttons (their
`custom_id` names the user and the page, so they work after a restart: `bot.custom_ids`), and
what a press does. The bot stores no pictures: each line links to the picture's message.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import discord

from bot.buttons import Buttons
from bot.custom_ids import HistoryPress, history_id
from bot.history_text import HISTORY_SIZE, PAGE_SIZE, history_text
from bot.i18n import language_of, t
from bot.messaging import send_ephemeral

if TYPE_CHECKING:
    from bot.client import PokemonBot
    from storage import JobRecord

    Interaction = discord.Interaction[PokemonBot]

EMBED_COLOUR = 0xF2C94C


def history_page(
    jobs: list[JobRecord], user_id: int, page: int, locale: str
) -> tuple[discord.Embed, Buttons | None]:
    """The embed of page `page` of `jobs` (the user's history, newest first) and its buttons
    (None when everything fits on one page)."""
    pages = max(1, math.ceil(len(jobs) / PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    shown = jobs[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    embed = discord.Embed(
        title=t("history.title", locale),
        description=history_text(shown, page, locale),
        colour=EMBED_COLOUR,
    )
    if pages == 1:
        return embed, None
    embed.set_footer(text=t("history.footer", locale, page=page + 1, pages=pages))

    def button(key: str, emoji: str, target: int, disabled: bool) -> Any:
        return discord.ui.Button[Any](
            style=discord.ButtonStyle.secondary,
            emoji=emoji,
            label=t(key, locale),
            custom_id=history_id(user_id, target),
            disabled=disabled,
        )

    return embed, Buttons(
        button("history.newer", "◀️", page - 1, page == 0),
        button("history.older", "▶️", page + 1, page == pages - 1),
    )


async def user_history(interaction: Interaction, user_id: int) -> list[JobRecord]:
    """The user's last HISTORY_SIZE delivered pictures in the interaction's server."""
    if interaction.guild_id is None:
        return []
    return await interaction.client.store.jobs.history(
        user_id, interaction.guild_id, limit=HISTORY_SIZE
    )


async def press_history(interaction: Interaction, press: HistoryPress) -> None:
    """◀ / ▶ (already acknowledged): the page redrawn in place."""
    locale = language_of(interaction.locale)
    if interaction.user.id != press.user_id:
        await send_ephemeral(interaction, t("error.not_allowed", locale))
        return
    jobs = await user_history(interaction, press.user_id)
    embed, view = history_page(jobs, press.user_id, press.page, locale)
    await interaction.edit_original_response(embed=embed, view=view)
