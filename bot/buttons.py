"""Buttons under the bot's messages, alive across restarts.

Each button is a `JobButton`, a `discord.ui.DynamicItem`: its state lives in its `custom_id`
(`pkmn:<action>:<job id>[:<argument>]`), so a button on a message posted by an earlier process
still works: `PokemonBot.setup_hook` registers the class once with `add_dynamic_items`, and a
press finds its job by id in the database. No view is kept in memory per message.

- Under a result: 🔁 new variation, ℹ️ details (ephemeral, with a `/pokemon` line that draws
  the same picture; for a picture drawn from a picture, its strength and a note that the line
  needs that picture attached as `image:`), 🗑️ delete, 🎨 Vary (subtle) and 🎨 Vary (strong) (a new picture from that
  picture at strength 0.35 or 0.65: `pkmn:vary:<job>:subtle|strong`). Under a set of several
  pictures the 🎨 buttons name the picture they start from, one row per strength
  (`pkmn:vary:<job>:subtle2` is picture 2). `result_buttons()` builds the rows (a row holds
  five buttons); add more result buttons there (and their handler in `ACTIONS`).
- Under a queued or running job: ✖ cancel (`cancel_buttons()`).

Who may press what is checked on each press, never by hiding the button: 🔁 and ℹ️ need what
`/pokemon` needs in that channel, and so does 🎨 (its Integrations permissions, see
`bot.command_permissions`); 🗑️ and ✖ the requester, a configured owner or Manage Server.
A refusal is an ephemeral, localized message. Every press is first acknowledged without a
visible change (DEFERRED_UPDATE_MESSAGE), well inside Discord's 3 s; answers are followups.
A handler that fails (a database busy or full, a bug) is answered as a command would be
(`bot.tree.answer_error`: "storage unavailable", or an error id that the log also has).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import language_of, t
from bot.jobs import request_as_drawn, request_from_job
from bot.messaging import escape_user_text, send_ephemeral
from bot.origins import ButtonOrigin
from bot.permissions import is_admin
from bot.tree import answer_error
from bot.validation import VARY_STRONG, VARY_SUBTLE
from generation.pnginfo import sampler_name
from generation.translate import needs_translation

if TYPE_CHECKING:
    from bot.client import PokemonBot
    from storage import JobRecord

log = logging.getLogger(__name__)

PREFIX = "pkmn"
# Discord allows 100 characters in a custom_id; ours stay far below.
TEMPLATE = re.compile(
    rf"{PREFIX}:(?P<action>[a-z]+):(?P<job>[0-9]{{1,20}})(?::(?P<arg>[a-z0-9]+))?"
)

MESSAGE_MAX = 2000
REGEN, INFO, DELETE, CANCEL, VARY = "regen", "info", "delete", "cancel", "vary"
EMOJIS = {REGEN: "🔁", INFO: "ℹ️", DELETE: "🗑️", CANCEL: "✖️", VARY: "🎨"}
VARY_STRENGTHS = {"subtle": VARY_SUBTLE, "strong": VARY_STRONG}  # the 🎨 buttons' argument
# A 🎨 button's argument: the strength, and for a set which picture (1-based; none: the first).
VARY_ARG = re.compile(r"(?P<kind>[a-z]+?)(?P<picture>[1-9]?)")
STYLES = {
    REGEN: discord.ButtonStyle.primary,
    INFO: discord.ButtonStyle.secondary,
    DELETE: discord.ButtonStyle.secondary,
    CANCEL: discord.ButtonStyle.danger,
}


def custom_id(action: str, job_id: int, arg: str | None = None) -> str:
    """The `custom_id` of one button: `pkmn:regen:42`, `pkmn:vary:42:subtle`."""
    return f"{PREFIX}:{action}:{job_id}" + (f":{arg}" if arg is not None else "")


@dataclass(frozen=True, slots=True)
class Press:
    """What a pressed button asks for, read back from its `custom_id`."""

    action: str
    job_id: int
    arg: str | None = None


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """One button of a job: the press is handled by `ACTIONS[action]`."""

    def __init__(self, button: discord.ui.Button[Any], press: Press) -> None:
        super().__init__(button)
        self.press = press

    @classmethod
    def make(
        cls,
        action: str,
        job_id: int,
        locale: str,
        *,
        arg: str | None = None,
        label_key: str | None = None,
        row: int | None = None,
        **label_params: object,
    ) -> JobButton:
        """A new button for `job_id`, labelled in the job's language, on row `row` (None:
        the first with room)."""
        button: discord.ui.Button[Any] = discord.ui.Button(
            style=STYLES.get(action, discord.ButtonStyle.secondary),
            emoji=EMOJIS.get(action),
            label=t(label_key or f"button.{action}", locale, **label_params),
            custom_id=custom_id(action, job_id, arg),
            row=row,
        )
        return cls(button, Press(action, job_id, arg))

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> JobButton:
        assert isinstance(item, discord.ui.Button)  # the template only matches our buttons
        press = Press(match["action"], int(match["job"]), match["arg"])
        return cls(item, press)  # pyright: ignore[reportUnknownArgumentType]

    async def callback(self, interaction: discord.Interaction[Any]) -> None:  # pyright: ignore[reportIncompatibleMethodOverride]
        handler = ACTIONS.get(self.press.action)
        if handler is None:
            log.info("a button with unknown action %r was pressed", self.press.action)
            await interaction.response.defer()
            return
        where = f"button {self.press.action} on job={self.press.job_id}"
        try:
            await interaction.response.defer()  # no visible change; answers are followups
            await handler(interaction, self.press)
        except discord.HTTPException as exc:
            log.warning("%s: %s", where, exc)
        except Exception as exc:
            # The database busy or full, or a bug: the presser gets the same private answer a
            # command would (`bot.tree.answer_error`), never silence.
            await answer_error(interaction, exc, where)


def _view(*buttons: JobButton) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(button)
    return view


def result_buttons(job_id: int, locale: str, *, pictures: int = 1) -> discord.ui.View:
    """The buttons under a finished result: 🔁 new variation, ℹ️ details, 🗑️ delete, and 🎨
    Vary (subtle) and (strong). One picture: one full row of five. A set of `pictures`: the
    three on the first row, then a row of 🎨 (subtle) and a row of 🎨 (strong) with a button
    per picture, so each picture of the set can be varied."""
    first = [
        JobButton.make(REGEN, job_id, locale, row=0),
        JobButton.make(INFO, job_id, locale, row=0),
        JobButton.make(DELETE, job_id, locale, row=0),
    ]
    if pictures <= 1:
        return _view(
            *first,
            *(
                JobButton.make(VARY, job_id, locale, arg=kind, label_key=f"vary.button.{kind}")
                for kind in VARY_STRENGTHS
            ),
        )
    return _view(
        *first,
        *(
            JobButton.make(
                VARY,
                job_id,
                locale,
                arg=f"{kind}{n}",
                label_key=f"vary.button.{kind}_n",
                row=row,
                n=n,
            )
            for row, kind in enumerate(VARY_STRENGTHS, start=1)
            for n in range(1, pictures + 1)
        ),
    )


def cancel_buttons(job_id: int, locale: str) -> discord.ui.View:
    """The ✖ cancel button under a queued or running job."""
    return _view(JobButton.make(CANCEL, job_id, locale))


# ---- what a press does ----------------------------------------------------------------------

Handler = Callable[["discord.Interaction[PokemonBot]", Press], Awaitable[None]]


async def _job(interaction: discord.Interaction[PokemonBot], press: Press) -> JobRecord | None:
    """The pressed button's job, or None after telling the presser it is gone."""
    job = await interaction.client.store.jobs.get(press.job_id)
    if job is None or (interaction.guild_id is not None and job.guild_id != interaction.guild_id):
        await send_ephemeral(interaction, t("button.job_gone", interaction.locale))
        return None
    return job


def may_manage(interaction: discord.Interaction[PokemonBot], job: JobRecord) -> bool:
    """🗑️ and ✖: the requester, a configured owner, or Manage Server here."""
    return interaction.user.id == job.user_id or is_admin(interaction)


async def may_draw(interaction: discord.Interaction[PokemonBot]) -> bool:
    """🔁 and ℹ️: whoever may use `/pokemon` in this channel (Integrations settings)."""
    if interaction.guild_id is None:
        return False
    member = interaction.user if isinstance(interaction.user, discord.Member) else None
    return await interaction.client.command_permissions.allowed(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id or 0,
        member=member,
        user_id=interaction.user.id,
    )


async def _regen(interaction: discord.Interaction[PokemonBot], press: Press) -> None:
    job = await _job(interaction, press)
    if job is None:
        return
    origin = ButtonOrigin(interaction, parent=job)
    await interaction.client.service.regenerate(origin)


async def _vary(interaction: discord.Interaction[PokemonBot], press: Press) -> None:
    """🎨 Vary (subtle / strong): a new picture from the pressed result's picture."""
    arg = VARY_ARG.fullmatch(press.arg or "")
    strength = VARY_STRENGTHS.get(arg["kind"]) if arg is not None else None
    if arg is None or strength is None:
        log.info("a vary button with unknown argument %r was pressed", press.arg)
        return
    job = await _job(interaction, press)
    if job is None:
        return
    origin = ButtonOrigin(interaction, parent=job, picture=int(arg["picture"] or 1))
    await interaction.client.service.vary(origin, strength)


async def _info(interaction: discord.Interaction[PokemonBot], press: Press) -> None:
    if not await may_draw(interaction):
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


async def _delete(interaction: discord.Interaction[PokemonBot], press: Press) -> None:
    job = await _job(interaction, press)
    if job is None:
        return
    if not may_manage(interaction, job):
        await send_ephemeral(interaction, t("button.delete_refused", interaction.locale))
        return
    message = interaction.message
    if message is None:
        return
    try:
        await message.delete()
    except discord.NotFound:
        return
    log.info("result of job=%s deleted by user=%s (button)", job.id, interaction.user.id)


async def _cancel(interaction: discord.Interaction[PokemonBot], press: Press) -> None:
    job = await _job(interaction, press)
    if job is None:
        return
    if not may_manage(interaction, job):
        await send_ephemeral(interaction, t("button.cancel_refused", interaction.locale))
        return
    if not await interaction.client.service.cancel(job.id, interaction.user.id):
        await send_ephemeral(interaction, t("button.cancel_too_late", interaction.locale))


ACTIONS: dict[str, Handler] = {
    REGEN: _regen,
    INFO: _info,
    DELETE: _delete,
    CANCEL: _cancel,
    VARY: _vary,
}


# ---- ℹ️ details ----------------------------------------------------------------------------


def drawn_from_picture(job: JobRecord) -> bool:
    """Whether the job drew over a source picture (🎨, `/pokemon image:`): its request keeps the
    strength, never the picture."""
    return request_from_job(job).strength > 0


def command_line(job: JobRecord) -> str:
    """The `/pokemon …` line that draws this job's picture again (same prompt, seed, steps,
    guidance, shape and count; the sampler and POKEMON_SIZE are the server's). A translated
    prompt is given as the Japanese the model got, so no translation is needed to redraw it;
    English the model got as typed carries `translate:off`. A picture drawn from a picture
    (🎨, `image:`) carries its `strength:`, but the line cannot carry the picture: it draws
    the same picture only with that picture attached as `image:` (ℹ️ says so)."""
    request = request_as_drawn(job)
    parts = [f"/pokemon prompt:{_one_line(request.prompt)}"]
    if request.negative_prompt:
        parts.append(f"negative:{_one_line(request.negative_prompt)}")
    parts += [f"seed:{request.seed}", f"steps:{request.steps}", f"guidance:{request.guidance:g}"]
    if request.width != request.height:
        parts.append("size:portrait" if request.height > request.width else "size:landscape")
    if request.count > 1:
        parts.append(f"count:{request.count}")
    if request.strength > 0:
        parts.append(f"strength:{request.strength:g}")
    if not request.translate and any(
        needs_translation(text) for text in (request.prompt, request.negative_prompt)
    ):
        parts.append("translate:off")
    return " ".join(parts)


def _one_line(text: str) -> str:
    return " ".join(text.replace("`", "ˋ").split())  # nothing may end the code block


def details_text(job: JobRecord, model: str, locale: str) -> str:
    """ℹ️: every parameter of the picture, and the command line that redraws it. A picture
    drawn from a picture shows its strength, and its command line comes with a note that the
    source picture must be attached (the bot never keeps it): without it, the line would
    draw a different picture from the text alone."""
    request = request_from_job(job)
    texts = [t("details.prompt", locale, prompt=escape_user_text(request.prompt, 900))]
    if request.negative_prompt:
        negative = escape_user_text(request.negative_prompt, 500)
        texts.append(t("details.negative", locale, negative=negative))
    from_picture = drawn_from_picture(job)
    rest = [
        t(
            "details.parameters",
            locale,
            seed=request.seed,
            steps=request.steps,
            guidance=f"{request.guidance:g}",
            sampler=sampler_name(request.scheduler),
            width=request.width,
            height=request.height,
        ),
        *(
            [t("details.strength", locale, strength=f"{request.strength:g}")]
            if from_picture
            else []
        ),
        t("details.model", locale, model=escape_user_text(model, 200)),
        t("details.command_from_picture" if from_picture else "details.command", locale),
        f"```\n{command_line(job)}\n```",
    ]
    header = t("details.header", locale, job=job.id)
    text = "\n".join([header, *texts, *rest])
    if len(text) > MESSAGE_MAX:  # long prompts: the command line carries them already
        text = "\n".join([header, *rest])
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 4] + "…```"
