"""Buttons under the bot's messages: what they look like and the `custom_id` each carries.

Presentation only. A button's state lives in its `custom_id` (`bot.custom_ids`), so a button on
a message posted by an earlier process still works: every press reaches `bot.router` (through
`PokemonBot.on_interaction`), which reads the id back and answers it. The views built here are
`Buttons`, which discord.py never dispatches (not "dispatchable"): nothing is registered or kept
in memory per message, and no press is answered twice.

- Under a result: 🔁 new variation, ℹ️ details (`details_text`: ephemeral, with a `/pokemon`
  line that draws the same picture; for a picture drawn from a picture, its strength and a note
  that the line needs that picture attached as `image:`), 🗑️ delete, 🎨 Vary (subtle) and 🎨
  Vary (strong) (a new picture from that picture at strength 0.35 or 0.65:
  `pkmn:vary:<job>:subtle|strong`). Under a set of several pictures the 🎨 buttons name the
  picture they start from, one row per strength (`pkmn:vary:<job>:subtle2` is picture 2).
  `result_buttons()` builds the rows (a row holds five buttons); a new result button needs its
  id in `bot.custom_ids` and its handler in `bot.presses`. ⬆️ Upscale (`pkmn:up:<job>`, a set's
  `pkmn:up:<job>:2`) sits on a row of its own: one button under a single picture, one per
  picture under a set.
- Under an upscaled picture: ⬆️ (refused when pressed: it is 4x already) and 🗑️
  (`upscaled_buttons()`).
- Under a queued or running job: ✖ cancel (`cancel_buttons()`).
- Under `/privacy`'s answer: "Delete my data" (`forget_buttons()`, `pkmn:forget:<user>`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from bot.custom_ids import (
    CANCEL,
    DELETE,
    INFO,
    REGEN,
    UPSCALE,
    VARY,
    VARY_KINDS,
    custom_id,
    forget_id,
)
from bot.i18n import t
from bot.jobs import request_as_drawn, request_from_job
from bot.messaging import escape_user_text
from generation.pnginfo import sampler_name
from generation.translate import needs_translation

if TYPE_CHECKING:
    from storage import JobRecord

__all__ = [
    "cancel_buttons",
    "command_line",
    "custom_id",
    "details_text",
    "result_buttons",
    "upscaled_buttons",
]

MESSAGE_MAX = 2000
EMOJIS = {REGEN: "🔁", INFO: "ℹ️", DELETE: "🗑️", CANCEL: "✖️", VARY: "🎨", UPSCALE: "⬆️"}
STYLES = {
    REGEN: discord.ButtonStyle.primary,
    INFO: discord.ButtonStyle.secondary,
    DELETE: discord.ButtonStyle.secondary,
    CANCEL: discord.ButtonStyle.danger,
}


class Buttons(discord.ui.View):
    """A message's buttons (and selects), for sending only: `bot.router` answers their
    presses."""

    def __init__(self, *buttons: discord.ui.Item[Any]) -> None:
        super().__init__(timeout=None)
        for button in buttons:
            self.add_item(button)

    def is_dispatchable(self) -> bool:
        # discord.py stores a dispatchable view per message it is sent with and calls its
        # buttons' callbacks on a press: ours would answer nothing, and hold memory forever.
        return False


def job_button(
    action: str,
    job_id: int,
    locale: str,
    *,
    arg: str | None = None,
    label_key: str | None = None,
    row: int | None = None,
    **label_params: object,
) -> discord.ui.Button[Any]:
    """A button of `job_id`, labelled in the job's language, on row `row` (None: the first
    with room)."""
    return discord.ui.Button(
        style=STYLES.get(action, discord.ButtonStyle.secondary),
        emoji=EMOJIS.get(action),
        label=t(label_key or f"button.{action}", locale, **label_params),
        custom_id=custom_id(action, job_id, arg),
        row=row,
    )


def result_buttons(job_id: int, locale: str, *, pictures: int = 1) -> discord.ui.View:
    """The buttons under a finished result: 🔁 new variation, ℹ️ details, 🗑️ delete, 🎨
    Vary (subtle) and (strong), ⬆️ upscale. One picture: a full row of five, ⬆️ on the second.
    A set of `pictures`: the three on the first row, then a row of 🎨 (subtle), a row of 🎨
    (strong) and a row of ⬆️ with a button per picture, so each picture of the set can be
    varied or upscaled."""
    first = [job_button(action, job_id, locale, row=0) for action in (REGEN, INFO, DELETE)]
    if pictures <= 1:
        return Buttons(
            *first,
            *(
                job_button(VARY, job_id, locale, arg=kind, label_key=f"vary.button.{kind}", row=0)
                for kind in VARY_KINDS
            ),
            job_button(UPSCALE, job_id, locale, row=1),
        )
    return Buttons(
        *first,
        *(
            job_button(
                VARY,
                job_id,
                locale,
                arg=f"{kind}{n}",
                label_key=f"vary.button.{kind}_n",
                row=row,
                n=n,
            )
            for row, kind in enumerate(VARY_KINDS, start=1)
            for n in range(1, pictures + 1)
        ),
        *(
            job_button(UPSCALE, job_id, locale, arg=str(n), label_key="button.up_n", row=3, n=n)
            for n in range(1, pictures + 1)
        ),
    )


def upscaled_buttons(job_id: int, locale: str) -> discord.ui.View:
    """Under an upscaled picture: ⬆️ (which says it is 4x already) and 🗑️ delete."""
    return Buttons(job_button(UPSCALE, job_id, locale), job_button(DELETE, job_id, locale))


def cancel_buttons(job_id: int, locale: str) -> discord.ui.View:
    """The ✖ cancel button under a queued or running job."""
    return Buttons(job_button(CANCEL, job_id, locale))


def forget_buttons(user_id: int, locale: object) -> discord.ui.View:
    """`/privacy`'s "Delete my data" for `user_id`: it works after a restart, for that user."""
    return Buttons(
        discord.ui.Button(
            style=discord.ButtonStyle.danger,
            label=t("privacy.delete_button", locale),
            custom_id=forget_id(user_id),
        )
    )


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
