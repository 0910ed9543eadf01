"""Every `custom_id` the bot has ever put on a message, and what a press of each asks for.

Pure parsing, no Discord: `bot.buttons` builds the ids, `bot.router` reads them back with
`parse()` and answers every press (an id `parse()` does not know: "this button has expired").

Today's formats (Discord allows 100 characters; ours stay far below):

- `pkmn:<action>:<job id>`: 🔁 `regen`, ℹ️ `info`, 🗑️ `delete`, ✖ `cancel`.
- `pkmn:vary:<job id>:<subtle|strong>[<picture>]`: 🎨, from picture 1-9 of a set (none: the
  first).
- `pkmn:up:<job id>[:<picture>]`: ⬆️ upscale picture 1-9 of a set (none: the first).
- `pkmn:forget:<user id>`: `/privacy`'s "Delete my data", usable by that user only.
- `pkmn:set:<user id>:<size|count|translate|negative|reset>`: `/settings`' selects and buttons;
  `pkmn:setneg:<user id>`: its "default negative prompt" form (a modal). That user's only.
- `pkmn:hist:<user id>:<page>`: `/history`'s page buttons (page 0 is the newest).

Older formats, still understood because their meaning is known:

- `pokemon:vary:<subtle|strong>:<job id>`: the first 🎨 buttons (bot/vary_buttons.py, before
  they joined the result row).
- `pokemon:<action>:<job id>`: the `pokemon:` prefix with today's actions.
- `privacy:forget`: `/privacy`'s button while it was a View held in the bot's memory (it died
  with a restart). It carries no user id, but its message was ephemeral, shown only to the
  user who asked, so it forgets whoever presses it there (`ForgetPress.user_id` None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

PREFIX = "pkmn"
REGEN, INFO, DELETE, CANCEL, VARY, FORGET = "regen", "info", "delete", "cancel", "vary", "forget"
UPSCALE = "up"
SETTINGS, NEGATIVE_FORM, HISTORY = "set", "setneg", "hist"
SETTING_FIELDS = ("size", "count", "translate", "negative", "reset")  # what `pkmn:set` changes
MAX_HISTORY_PAGE = 99
JOB_ACTIONS = frozenset({REGEN, INFO, DELETE, CANCEL})  # the actions without an argument
VARY_KINDS = ("subtle", "strong")  # the 🎨 buttons' strengths (`bot.validation.VARY_*`)
_ID = r"[0-9]{1,20}"  # a job id or a Discord snowflake

_CURRENT = re.compile(rf"{PREFIX}:(?P<action>[a-z]+):(?P<id>{_ID})(?::(?P<arg>[a-z0-9]+))?")
_VARY_ARG = re.compile(r"(?P<kind>subtle|strong)(?P<picture>[1-9]?)")
_PICTURE = re.compile(r"[1-9]")
_OLD_VARY = re.compile(rf"pokemon:vary:(?P<kind>subtle|strong):(?P<id>{_ID})")
_OLD_ACTION = re.compile(rf"pokemon:(?P<action>[a-z]+):(?P<id>{_ID})")
_OLD_FORGET = "privacy:forget"


@dataclass(frozen=True, slots=True)
class JobPress:
    """A button of a job: 🔁, ℹ️, 🗑️, ✖, 🎨 with its strength and picture, or ⬆️ with its
    picture."""

    action: str
    job_id: int
    kind: str | None = None  # 🎨: "subtle" or "strong"
    picture: int = 1  # 🎨, ⬆️: which picture of a set (1-based)
    opens_form: ClassVar[bool] = False  # answered by a modal, not acknowledged first


@dataclass(frozen=True, slots=True)
class ForgetPress:
    """`/privacy`'s delete button: the data of `user_id` (None: of whoever pressed it)."""

    user_id: int | None
    action: str = FORGET
    opens_form: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class SettingsPress:
    """`/settings`: a select or button of `user_id`'s defaults (`field`), or ("submit") the
    negative-prompt form sent."""

    user_id: int
    field: str
    action: str = SETTINGS

    @property
    def opens_form(self) -> bool:
        """The negative prompt's button answers with its form (a modal)."""
        return self.field == "negative"


@dataclass(frozen=True, slots=True)
class HistoryPress:
    """`/history`: show `user_id`'s page `page`."""

    user_id: int
    page: int
    action: str = HISTORY
    opens_form: ClassVar[bool] = False


Press = JobPress | ForgetPress | SettingsPress | HistoryPress


def custom_id(action: str, job_id: int, arg: str | None = None) -> str:
    """The `custom_id` of a job's button: `pkmn:regen:42`, `pkmn:vary:42:subtle`."""
    return f"{PREFIX}:{action}:{job_id}" + (f":{arg}" if arg is not None else "")


def forget_id(user_id: int) -> str:
    """The `custom_id` of `/privacy`'s delete button for `user_id`: `pkmn:forget:<user>`."""
    return f"{PREFIX}:{FORGET}:{user_id}"


def settings_id(user_id: int, field: str) -> str:
    """`/settings`' item for `field` (one of SETTING_FIELDS) of `user_id`."""
    return f"{PREFIX}:{SETTINGS}:{user_id}:{field}"


def negative_form_id(user_id: int) -> str:
    return f"{PREFIX}:{NEGATIVE_FORM}:{user_id}"


def history_id(user_id: int, page: int) -> str:
    return f"{PREFIX}:{HISTORY}:{user_id}:{page}"


def parse(custom_id: str) -> Press | None:
    """What a press of `custom_id` asks for; None for an id the bot never made (or a
    malformed one: `pkmn:regen:abc`, `pkmn:vary:42:weird`, an argument where none belongs)."""
    found = _CURRENT.fullmatch(custom_id)
    if found is not None:
        return _current(found["action"], int(found["id"]), found["arg"])
    found = _OLD_VARY.fullmatch(custom_id)
    if found is not None:
        return JobPress(VARY, int(found["id"]), kind=found["kind"])
    found = _OLD_ACTION.fullmatch(custom_id)
    if found is not None and found["action"] in JOB_ACTIONS:
        return JobPress(found["action"], int(found["id"]))
    if custom_id == _OLD_FORGET:
        return ForgetPress(None)
    return None


def _current(action: str, number: int, arg: str | None) -> Press | None:
    if action in JOB_ACTIONS:
        return JobPress(action, number) if arg is None else None
    if action == FORGET:
        return ForgetPress(number) if arg is None else None
    if action == SETTINGS and arg in SETTING_FIELDS:
        return SettingsPress(number, arg)
    if action == NEGATIVE_FORM and arg is None:
        return SettingsPress(number, "submit")
    if action == HISTORY and arg is not None and arg.isdigit() and int(arg) <= MAX_HISTORY_PAGE:
        return HistoryPress(number, int(arg))
    if action == UPSCALE and (arg is None or _PICTURE.fullmatch(arg)):
        return JobPress(UPSCALE, number, picture=int(arg or 1))
    if action == VARY and arg is not None:
        vary = _VARY_ARG.fullmatch(arg)
        if vary is not None:
            return JobPress(VARY, number, kind=vary["kind"], picture=int(vary["picture"] or 1))
    return None
