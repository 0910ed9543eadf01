"""Slash-command interactions: building the INTERACTION_CREATE payload and recording replies.

`build_options` turns `{"user": alice, "images": 5}` plus the command path into Discord's
nested `options` and `resolved` structures, typed from the command as the bot registered it,
and refuses what the Discord client itself would refuse (unknown or missing options,
values outside choices or bounds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .state import (
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
)

if TYPE_CHECKING:
    from .server import FakeDiscord

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = (
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
)

# Discord's locale list; clients send one of these exactly ("en" alone is never sent).
LOCALES = frozenset(
    {
        "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu",
        "nl", "no", "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru",
        "uk", "hi", "th", "zh-CN", "ja", "zh-TW", "ko",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class WireValue:
    """An option value sent exactly as given, whatever the option's type says: a prompt as
    a number, a seed as a string, a lone surrogate. Only with `invoke(..., strict=False)`:
    Discord's own client never sends these, a modified one can."""

    value: Any


@dataclass(frozen=True, slots=True)
class FileRecord:
    """An uploaded file as the fake received it."""

    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    """One accepted `POST /interactions/{id}/{token}/callback`."""

    at: float
    type: int
    data: dict[str, Any] | None
    files: tuple[FileRecord, ...] = ()

    @property
    def ephemeral(self) -> bool:
        return bool(int((self.data or {}).get("flags") or 0) & 64)


@dataclass(frozen=True, slots=True)
class EditRecord:
    """One accepted edit of an interaction message: `@original` or a followup through the
    webhook (`via="webhook"`), an UPDATE_MESSAGE callback (`"callback"`) or the channel
    endpoint (`"channel"`)."""

    at: float
    message_id: int
    payload: dict[str, Any]
    files: tuple[FileRecord, ...]
    content: str
    embeds: tuple[dict[str, Any], ...]
    attachments: tuple[FileRecord, ...]  # the message's attachments after the edit
    components: tuple[dict[str, Any], ...] = ()  # the message's components after the edit
    via: str = "webhook"


@dataclass(frozen=True, slots=True)
class RejectedCall:
    """A call on this interaction that the fake refused (late, expired, duplicate...)."""

    at: float
    method: str
    path: str
    status: int
    code: int
    message: str


@dataclass(slots=True)
class InteractionRecord:
    """Everything that happened to one invoked slash command; returned by `invoke`."""

    fake: FakeDiscord = field(repr=False)
    id: int
    token: str
    command: str
    options: dict[str, Any]
    user_id: int
    guild_id: int | None
    channel_id: int
    locale: str
    payload: dict[str, Any] = field(repr=False)
    delivered_at: float  # fake clock, when INTERACTION_CREATE was sent
    token_born_at: float  # fake clock; the token lives `token_lifetime` from here
    type: int = 2  # 2 a slash command, 3 a component (button, select)
    custom_id: str | None = None  # the pressed component's, for type 3
    message_id: int | None = None  # the message the component is on, for type 3
    callbacks: list[CallbackRecord] = field(default_factory=list)
    original_message_id: int | None = None
    edits: list[EditRecord] = field(default_factory=list)
    followup_ids: list[int] = field(default_factory=list)
    deleted_ids: list[int] = field(default_factory=list)
    rejected: list[RejectedCall] = field(default_factory=list)

    # -- what the first response was --------------------------------------------------------

    @property
    def responded(self) -> bool:
        return bool(self.callbacks)

    @property
    def first_response_at(self) -> float | None:
        return self.callbacks[0].at if self.callbacks else None

    @property
    def response_delay(self) -> float | None:
        """Seconds from delivery to the first accepted callback (None if none yet)."""
        first = self.first_response_at
        return None if first is None else first - self.delivered_at

    @property
    def callback_type(self) -> int | None:
        """4 message, 5 deferred message, 8 autocomplete, 9 modal, ... (None if none yet)."""
        return self.callbacks[0].type if self.callbacks else None

    @property
    def deferred(self) -> bool:
        return self.callback_type == 5

    @property
    def ephemeral(self) -> bool:
        return bool(self.callbacks) and self.callbacks[0].ephemeral

    @property
    def original_message(self) -> FakeMessage | None:
        if self.original_message_id is None:
            return None
        return self.fake.messages.get(self.original_message_id)

    @property
    def followups(self) -> list[FakeMessage]:
        return [self.fake.messages[i] for i in self.followup_ids if i in self.fake.messages]

    def original_edits(self) -> list[EditRecord]:
        return [e for e in self.edits if e.message_id == self.original_message_id]

    # -- waiting ---------------------------------------------------------------------------

    async def wait_until(
        self, predicate: Callable[[InteractionRecord], bool], within: float = 10.0
    ) -> None:
        """Wait until `predicate(self)` holds (checked on every change the fake sees)."""
        await self.fake.wait_until(lambda: predicate(self), within=within)

    async def wait_response(self, within: float = 10.0) -> CallbackRecord:
        """Wait for the first accepted callback and return it."""
        await self.wait_until(lambda r: r.responded, within)
        return self.callbacks[0]

    async def wait_edits(self, count: int, within: float = 10.0) -> list[EditRecord]:
        """Wait until at least `count` edits have landed; return all of them."""
        await self.wait_until(lambda r: len(r.edits) >= count, within)
        return list(self.edits)

    async def wait_followups(self, count: int, within: float = 10.0) -> list[FakeMessage]:
        """Wait until at least `count` followup messages exist; return them."""
        await self.wait_until(lambda r: len(r.followup_ids) >= count, within)
        return self.followups

    async def wait_rejected(self, count: int = 1, within: float = 10.0) -> list[RejectedCall]:
        """Wait until the fake has refused at least `count` calls on this interaction."""
        await self.wait_until(lambda r: len(r.rejected) >= count, within)
        return list(self.rejected)


def resolve_id(value: Any) -> int:
    """An id from an int, a numeric string, or any fake object with `.id`."""
    if isinstance(value, bool):
        raise TypeError("a snowflake cannot be a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if hasattr(value, "id"):
        return int(value.id)
    raise TypeError(f"cannot take a snowflake from {value!r}")


def _find_option(schema: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    for option in schema or []:
        if option.get("name") == name:
            return option
    return None


def _guess_type(value: Any) -> int:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    if isinstance(value, FakeUser | FakeMember):
        return USER
    if isinstance(value, FakeChannel):
        return CHANNEL
    if isinstance(value, FakeRole):
        return ROLE
    if isinstance(value, tuple):
        return ATTACHMENT
    return STRING


class OptionBuilder:
    """Builds `data.options` and `data.resolved` for one invocation."""

    def __init__(self, fake: FakeDiscord, guild: FakeGuild | None, channel_id: int) -> None:
        self.fake = fake
        self.guild = guild
        self.channel_id = channel_id
        self.resolved: dict[str, dict[str, Any]] = {}

    def _resolve_user(self, user_id: int) -> None:
        user = self.fake.users.get(user_id)
        if user is None:
            raise ValueError(f"unknown user {user_id} in a user option")
        self.resolved.setdefault("users", {})[str(user_id)] = user.to_payload()
        member = self.guild.members.get(user_id) if self.guild else None
        if member is not None and self.guild is not None:
            data = member.to_payload(with_user=False)
            data["permissions"] = str(self.guild.channel_permissions(user_id, self.channel_id))
            self.resolved.setdefault("members", {})[str(user_id)] = data

    def _resolve_role(self, role_id: int) -> bool:
        role = self.guild.roles.get(role_id) if self.guild else None
        if role is None:
            return False
        self.resolved.setdefault("roles", {})[str(role_id)] = role.to_payload()
        return True

    def _resolve_channel(self, channel_id: int) -> None:
        guild = self.fake.guild_of_channel(channel_id)
        channel = guild.channels.get(channel_id) if guild else None
        if channel is None or guild is None:
            raise ValueError(f"unknown channel {channel_id} in a channel option")
        bot_perms = guild.channel_permissions(self.fake.bot_user.id, channel_id)
        self.resolved.setdefault("channels", {})[str(channel_id)] = {
            "id": str(channel.id),
            "name": channel.name,
            "type": channel.type,
            "guild_id": str(guild.id),
            "parent_id": None if channel.parent_id is None else str(channel.parent_id),
            "permissions": str(bot_perms),
        }

    def value(self, name: str, kind: int, raw: Any) -> Any:
        """The wire value for one leaf option, filling `resolved` as a side effect."""
        if isinstance(raw, WireValue):
            return raw.value
        if kind == STRING:
            return str(raw)
        if kind == INTEGER:
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ValueError(f"option {name!r} is an integer option; got {raw!r}")
            return raw
        if kind == NUMBER:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ValueError(f"option {name!r} is a number option; got {raw!r}")
            return float(raw)
        if kind == BOOLEAN:
            if not isinstance(raw, bool):
                raise ValueError(f"option {name!r} is a boolean option; got {raw!r}")
            return raw
        if kind == USER:
            uid = resolve_id(raw)
            self._resolve_user(uid)
            return str(uid)
        if kind == CHANNEL:
            cid = resolve_id(raw)
            self._resolve_channel(cid)
            return str(cid)
        if kind == ROLE:
            rid = resolve_id(raw)
            if not self._resolve_role(rid):
                raise ValueError(f"unknown role {rid} in option {name!r}")
            return str(rid)
        if kind == MENTIONABLE:
            mid = resolve_id(raw)
            if not self._resolve_role(mid):
                self._resolve_user(mid)
            return str(mid)
        if kind == ATTACHMENT:
            attachment = self._attachment(raw)
            self.resolved.setdefault("attachments", {})[str(attachment.id)] = (
                attachment.to_payload()
            )
            return str(attachment.id)
        raise ValueError(f"option {name!r} has unsupported type {kind}")

    def _attachment(self, raw: Any) -> FakeAttachment:
        if isinstance(raw, FakeAttachment):
            return raw
        if isinstance(raw, tuple) and len(raw) in (2, 3):
            filename, data, *content_type = raw
            return self.fake.upload(
                str(filename),
                bytes(data),
                content_type=str(content_type[0]) if content_type else None,
                channel=self.channel_id,
            )
        raise ValueError(
            "an attachment option takes (filename, bytes[, content_type]), "
            "or a FakeAttachment from fake.upload()"
        )


def _check_leaf(option: dict[str, Any], value: Any) -> None:
    name = option["name"]
    choices = option.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ValueError(f"option {name!r}: {value!r} is not one of the registered choices")
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = option.get("min_value"), option.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"option {name!r}: {value!r} is outside [{low}, {high}]")
    if isinstance(value, str) and option.get("type") == STRING:
        low, high = option.get("min_length"), option.get("max_length", 6000)
        if (low is not None and len(value) < low) or len(value) > high:
            raise ValueError(f"option {name!r}: length {len(value)} is outside [{low}, {high}]")


def build_options(
    builder: OptionBuilder,
    schema: list[dict[str, Any]] | None,
    path: list[str],
    values: Mapping[str, Any],
    *,
    strict: bool,
) -> list[dict[str, Any]]:
    """Nested `options` for `path` (sub-command names under the root) and leaf `values`."""
    if path:
        head, rest = path[0], path[1:]
        node = _find_option(schema, head)
        if node is None:
            if strict and schema is not None:
                raise ValueError(f"no sub-command or group {head!r} in the registered command")
            kind = SUB_COMMAND_GROUP if rest else SUB_COMMAND
            sub_schema = None
        else:
            kind = int(node.get("type", 0))
            if kind not in (SUB_COMMAND, SUB_COMMAND_GROUP):
                raise ValueError(f"{head!r} is an option, not a sub-command")
            sub_schema = node.get("options") or []
        return [
            {
                "name": head,
                "type": kind,
                "options": build_options(builder, sub_schema, rest, values, strict=strict),
            }
        ]
    if schema is not None and any(
        o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema
    ):
        names = sorted(str(o["name"]) for o in schema)
        raise ValueError(f"this command needs a sub-command: one of {names}")
    leaves: list[dict[str, Any]] = []
    for name, raw in values.items():
        option = _find_option(schema, name)
        if option is None and strict and schema is not None:
            raise ValueError(f"the registered command has no option {name!r}")
        kind = int(option["type"]) if option is not None else _guess_type(raw)
        if isinstance(raw, WireValue) and strict:
            raise ValueError(f"option {name!r}: a WireValue needs strict=False")
        value = builder.value(name, kind, raw)
        if option is not None and strict:
            _check_leaf(option, value)
        leaves.append({"name": name, "type": kind, "value": value})
    if strict and schema is not None:
        missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
        if missing:
            raise ValueError(f"required option(s) missing: {missing}")
    return leaves
