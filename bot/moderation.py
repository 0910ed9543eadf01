"""Pure moderation rules: the blocklist's word matching and Discord's command permissions.

No I/O here; the job service and the cogs feed these from storage and from Discord.

Blocklist matching. A word and a prompt are compared after `normalize()`: Unicode NFKC (full
width ＰＩＫＡ → PIKA, half-width ﾋﾟｶﾁｭｳ → ピカチュウ, ligatures and circled letters to plain
ones), case folded, katakana folded to hiragana (ピカチュウ → ぴかちゅう), and every run of
white space made one space. So `ピカチュウ`, `ﾋﾟｶﾁｭｳ` and `ぴかちゅう` are one word. A word
matches anywhere inside the prompt (Japanese has no spaces between words).

Command permissions. Admins turn `/pokemon` on or off per channel, role and member in
Server Settings → Integrations. Discord enforces that for the slash command only; 🔁 and the
buttons ask `command_allowed()` with the overwrites read from the application command
permissions API (cached per guild by `bot.command_permissions`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Katakana ァ (U+30A1) .. ヶ (U+30F6) sit 0x60 above hiragana ぁ .. ゖ; ヽヾ above ゝゞ.
_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)} | {
    0x30FD: 0x309D,
    0x30FE: 0x309E,
}


def normalize(text: str) -> str:
    """`text` as the blocklist compares it: NFKC, case folded, katakana as hiragana, one
    space between words, no spaces at the ends."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_KATAKANA_TO_HIRAGANA)
    # NFKC again: case folding can produce sequences that compose (ǰ, ẖ, …).
    return " ".join(unicodedata.normalize("NFKC", folded).split())


def blocked_word(texts: Iterable[str], words: Iterable[str]) -> str | None:
    """The first blocked word (as stored) found in any of `texts`, or None.

    Words are stored normalized; they are normalized again here so that a word stored by an
    older normalizer still matches."""
    haystacks = [normalize(text) for text in texts if text]
    for word in words:
        needle = normalize(word)
        if needle and any(needle in haystack for haystack in haystacks):
            return word
    return None


# ---- application command permissions ----------------------------------------------------

CHANNEL_TYPE, ROLE_TYPE, USER_TYPE = 3, 1, 2  # Discord's APPLICATION_COMMAND_PERMISSION_TYPE


@dataclass(frozen=True, slots=True)
class Overwrite:
    """One entry of a command's (or the whole application's) permissions in a guild."""

    id: int  # a channel, role or user; `guild_id - 1` is "all channels", `guild_id` @everyone
    type: int  # ROLE_TYPE, USER_TYPE or CHANNEL_TYPE
    allowed: bool


def _decide(
    overwrites: Sequence[Overwrite],
    *,
    guild_id: int,
    channel_id: int,
    user_id: int,
    roles: Iterable[int],
) -> tuple[bool | None, bool | None]:
    """(channel verdict, member verdict) from one set of overwrites; None: says nothing."""
    by_channel = {o.id: o.allowed for o in overwrites if o.type == CHANNEL_TYPE}
    channel = by_channel.get(channel_id, by_channel.get(guild_id - 1))
    users = {o.id: o.allowed for o in overwrites if o.type == USER_TYPE}
    if user_id in users:
        return channel, users[user_id]
    role_ids = set(roles)
    by_role = {o.id: o.allowed for o in overwrites if o.type == ROLE_TYPE}
    own = [allowed for role, allowed in by_role.items() if role in role_ids and role != guild_id]
    if own:
        return channel, any(own)  # between the member's roles, an allow wins
    return channel, by_role.get(guild_id)  # the @everyone role


def command_allowed(
    command: Sequence[Overwrite],
    application: Sequence[Overwrite],
    *,
    guild_id: int,
    channel_id: int,
    user_id: int,
    roles: Iterable[int],
) -> bool:
    """Whether a member may use the command in a channel, by Discord's rules: the command's
    own overwrites first, then the application-wide ones, then allowed. A specific channel
    beats "all channels"; a member's own entry beats their roles, and their roles @everyone.
    Both the channel and the member must be allowed. (Owners and administrators are the
    caller's business: Discord lets administrators through regardless.)"""
    role_list = list(roles)
    found: list[bool | None] = [None, None]
    for overwrites in (command, application):
        verdicts = _decide(
            overwrites, guild_id=guild_id, channel_id=channel_id, user_id=user_id, roles=role_list
        )
        for index, verdict in enumerate(verdicts):
            if found[index] is None:
                found[index] = verdict
    return all(verdict is not False for verdict in found)
