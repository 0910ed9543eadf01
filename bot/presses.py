"""What a press of each of the bot's buttons does (`bot.router` calls these, already
acknowledged without a visible change: every answer here is a followup or an edit).

Who may press what is checked on each press, never by hiding the button: 🔁, 🎨, ⬆️ and ℹ️ need
what `/pokemon` needs in that channel (`bot.permissions.may_use_pokemon`); 🗑️ and ✖ the
requester, a configured owner or Manage Server (`may_manage_job`); "Delete my data" the user it
was shown to. A refusal is an ephemeral, localized message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord

from bot.buttons import details_text
from bot.custom_ids import CANCEL, DELETE, INFO, REGEN, UPSCALE, VARY, ForgetPress, JobPress
from bot.i18n import language_of, t
from bot.messaging import send_ephemeral
from bot.origins import ButtonOrigin
from bot.permissions import may_manage_job, may_use_pokemon, member_permissions, owner_ids_of
from bot.validation import VARY_STRONG, VARY_SUBTLE

if TYPE_CHECKING:
    from bot.client import PokemonBot
    from storage import JobRecord

    Interaction = discord.Interaction[PokemonBot]
    JobHandler = Callable[[Interaction, JobPress], Awaitable[None]]

log = logging.getLogger(__name__)
VARY_STRENGTHS = {"subtle": VARY_SUBTLE, "strong": VARY_STRONG}


async def _job(interaction: Interaction, press: JobPress) -> JobRecord | None:
    """The pressed button's job, or None after telling the presser it is gone (a job of
    another server is gone too, as far as this press is concerned)."""
    job = await interaction.client.store.jobs.get(press.job_id)
    if job is None or job.guild_id != interaction.guild_id:
        await send_ephemeral(interaction, t("button.job_gone", interaction.locale))
        return None
    return job


def _may_manage(interaction: Interaction, job: JobRecord) -> bool:
    return may_manage_job(
        job.user_id,
        user_id=interaction.user.id,
        owner_ids=owner_ids_of(interaction.client),
        permissions=member_permissions(interaction),
    )


async def _regen(interaction: Interaction, press: JobPress) -> None:
    job = await _job(interaction, press)
    if job is None:
        return
    await interaction.client.service.regenerate(ButtonOrigin(interaction, parent=job))


async def _vary(interaction: Interaction, press: JobPress) -> None:
    """🎨 Vary (subtle / strong): a new picture from the pressed result's picture."""
    job = await _job(interaction, press)
    if job is None:
        return
    origin = ButtonOrigin(interaction, parent=job, picture=press.picture)
    await interaction.client.service.vary(origin, VARY_STRENGTHS[press.kind or "strong"])


async def _upscale(interaction: Interaction, press: JobPress) -> None:
    """⬆️ Upscale: the pressed result's picture 4x larger, as a reply to it."""
    job = await _job(interaction, press)
    if job is None:
        return
    origin = ButtonOrigin(interaction, parent=job, picture=press.picture)
    await interaction.client.service.upscale(origin)


async def _info(interaction: Interaction, press: JobPress) -> None:
    member = interaction.user if isinstance(interaction.user, discord.Member) else None
    allowed = await may_use_pokemon(
        interaction.client.command_permissions,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id or 0,
        user_id=interaction.user.id,
        member=member,
    )
    if not allowed:
        await send_ephemeral(interaction, t("error.command_disabled", interaction.locale))
        return
    job = await _job(interaction, press)
    if job is None:
        return
    locale = language_of(interaction.locale)
    if job.prompt_blanked:
        await send_ephemeral(interaction, t("regen.prompt_gone", locale))
        return
    drew = (job.outcome or {}).get("model")  # the model that drew it; rows before it: the setting
    model = drew if isinstance(drew, str) and drew else interaction.client.settings.pokemon_model
    await send_ephemeral(interaction, details_text(job, model, locale))


async def _delete(interaction: Interaction, press: JobPress) -> None:
    job = await _job(interaction, press)
    if job is None:
        return
    if not _may_manage(interaction, job):
        await send_ephemeral(interaction, t("button.delete_refused", interaction.locale))
        return
    message = interaction.message
    try:
        if message is not None:
            await message.delete()
            log.info("result of job=%s deleted by user=%s (button)", job.id, interaction.user.id)
            return
    except discord.NotFound:
        pass  # a second press: the first one deleted it
    await send_ephemeral(interaction, t("button.already_deleted", interaction.locale))


async def _cancel(interaction: Interaction, press: JobPress) -> None:
    job = await _job(interaction, press)
    if job is None:
        return
    if not _may_manage(interaction, job):
        await send_ephemeral(interaction, t("button.cancel_refused", interaction.locale))
        return
    if not await interaction.client.service.cancel(job.id, interaction.user.id):
        await send_ephemeral(interaction, t("button.cancel_too_late", interaction.locale))


JOB_HANDLERS: dict[str, JobHandler] = {
    REGEN: _regen,
    INFO: _info,
    DELETE: _delete,
    CANCEL: _cancel,
    VARY: _vary,
    UPSCALE: _upscale,
}


async def press_job_button(interaction: Interaction, press: JobPress) -> None:
    await JOB_HANDLERS[press.action](interaction, press)


async def forget(interaction: Interaction, press: ForgetPress) -> None:
    """`/privacy`'s "Delete my data": the user's jobs cancelled and their data deleted, then
    the button taken off the message, which now says what was deleted. A second press (a
    stale copy of the message) finds nothing left and says so."""
    locale = interaction.locale
    if press.user_id is None and not _on_ephemeral_message(interaction):
        await send_ephemeral(interaction, expired_text(locale))  # never made so: not ours
        return
    owner = press.user_id if press.user_id is not None else interaction.user.id
    if interaction.user.id != owner:
        await send_ephemeral(interaction, t("error.not_allowed", locale))
        return
    cancelled, deleted = await interaction.client.service.forget_user(owner)
    log.info(
        "user=%s deleted their data: %d rows, %d jobs cancelled", owner, deleted, len(cancelled)
    )
    if deleted or cancelled:
        text = t(
            "privacy.deleted",
            locale,
            records=t("count.records", locale, count=deleted),
            jobs=t("count.queued_pictures", locale, count=len(cancelled)),
        )
        await _take_button_off(interaction, text)
        return
    await _take_button_off(interaction, None)
    await send_ephemeral(interaction, t("privacy.nothing_stored", locale))


def _on_ephemeral_message(interaction: Interaction) -> bool:
    """Whether the pressed message is ephemeral: shown only to the user who pressed it."""
    message = interaction.message
    return message is not None and message.flags.ephemeral


def expired_text(locale: object) -> str:
    """The answer to a button the bot does not know (any more): it has expired, and what to
    use instead."""
    return t("button.expired", locale)


async def _take_button_off(interaction: Interaction, text: str | None) -> None:
    """Edit the pressed (ephemeral) message through the interaction: no button, and `text`
    in place of its content (None: the content stays)."""
    try:
        if text is None:
            await interaction.edit_original_response(view=None)
        else:
            await interaction.edit_original_response(content=text, view=None)
    except discord.HTTPException as exc:
        log.info("could not take the delete button off: %s", exc)
        if text is not None:
            await send_ephemeral(interaction, text)
