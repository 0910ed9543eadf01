"""The in-memory world of the fake Discord: users, guilds, channels, messages, commands.

These classes are the fake server's own mutable records (not domain values), so they are
plain slotted dataclasses that the harness and the handlers change in place. Each one knows
how to render itself as the JSON payload real Discord would send.
"""

from __future__ import annotations

import itertools
import json
import mimetypes
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000


def json_text(data: Any) -> str:
    """Compact JSON, UTF-8 as Discord sends it; a lone surrogate (a hostile client's text,
    which UTF-8 cannot carry) travels as a `\\uXXXX` escape, as JSON allows."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = json.dumps(data, separators=(",", ":"))
    return text


class Perm:
    """Permission bits as Discord numbers them (only the ones a bot like ours meets)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    MANAGE_ROLES = 1 << 28
    USE_APPLICATION_COMMANDS = 1 << 31
    ALL = (1 << 53) - 1

    EVERYONE_DEFAULT = (
        VIEW_CHANNEL
        | SEND_MESSAGES
        | ADD_REACTIONS
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | USE_APPLICATION_COMMANDS
    )
    BOT_DEFAULT = (
        VIEW_CHANNEL
        | SEND_MESSAGES
        | ADD_REACTIONS
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | MANAGE_MESSAGES  # the invite asks for it, to take back users' 🔁
    )


class Intent:
    """Gateway intent bits; events are only delivered to sessions that asked for them."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    MESSAGE_CONTENT = 1 << 15
    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


class MessageFlag:
    """Message flag bits the fake sets or reads."""

    EPHEMERAL = 1 << 6
    LOADING = 1 << 7


class SnowflakeFactory:
    """Real-looking snowflakes: the timestamp part is wall-clock time, as discord.py reads it."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self, *, at: float | None = None) -> int:
        """A new unique id whose embedded time is `at` (epoch seconds, default now)."""
        ms = int((time.time() if at is None else at) * 1000)
        with self._lock:
            increment = next(self._counter) & 0xFFF
        return ((ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | increment


def snowflake_time(snowflake: int) -> float:
    """Epoch seconds embedded in a snowflake."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


def iso(ts: float) -> str:
    """ISO-8601 timestamp in the form Discord uses."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass(slots=True)
class FakeUser:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }


@dataclass(slots=True)
class FakeRole:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False
    bot_id: int | None = None

    def to_payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass(slots=True)
class FakeMember:
    user: FakeUser
    guild_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: float = field(default_factory=time.time)

    @property
    def id(self) -> int:
        return self.user.id

    def to_payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.to_payload()
        return data


@dataclass(slots=True)
class Overwrite:
    """A channel permission overwrite; `type` 0 is a role, 1 a member."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(self.allow),
            "deny": str(self.deny),
        }


THREAD_TYPES = frozenset({10, 11, 12})  # announcement, public and private threads


@dataclass(slots=True)
class FakeChannel:
    id: int
    guild_id: int
    name: str
    type: int = 0  # 0 text, 2 voice, 4 category, 5 announcement, 10-12 threads
    position: int = 0
    overwrites: list[Overwrite] = field(default_factory=list)
    parent_id: int | None = None
    last_message_id: int | None = None

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [o.to_payload() for o in self.overwrites],
            "parent_id": None if self.parent_id is None else str(self.parent_id),
            "topic": None,
            "nsfw": False,
            "last_message_id": None if self.last_message_id is None else str(self.last_message_id),
            "rate_limit_per_user": 0,
            "flags": 0,
        } | (self._thread_fields() if self.is_thread else {})

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    def _thread_fields(self) -> dict[str, Any]:
        """What a thread's payload adds (its parent is `parent_id`); never archived here."""
        return {
            "owner_id": str(self.guild_id),
            "message_count": 0,
            "member_count": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": iso(0.0),
                "locked": False,
            },
        }


@dataclass(slots=True)
class FakeGuild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    preferred_locale: str = "en-US"

    @property
    def everyone(self) -> FakeRole:
        return self.roles[self.id]

    def base_permissions(self, user_id: int) -> int:
        """Guild-level permissions of a member (Discord's algorithm, before overwrites)."""
        if user_id == self.owner_id:
            return Perm.ALL
        member = self.members.get(user_id)
        if member is None:
            return 0
        perms = self.everyone.permissions
        for role_id in member.roles:
            role = self.roles.get(role_id)
            if role is not None:
                perms |= role.permissions
        if perms & Perm.ADMINISTRATOR:
            return Perm.ALL
        return perms

    def channel_permissions(self, user_id: int, channel_id: int) -> int:
        """Permissions of a member in one channel: base, then @everyone, role, member overwrites."""
        perms = self.base_permissions(user_id)
        if perms == Perm.ALL:
            return perms
        channel = self.channels.get(channel_id)
        member = self.members.get(user_id)
        if channel is None or member is None:
            return perms
        by_id = {o.id: o for o in channel.overwrites}
        everyone = by_id.get(self.id)
        if everyone is not None:
            perms = (perms & ~everyone.deny) | everyone.allow
        allow = deny = 0
        for role_id in member.roles:
            ow = by_id.get(role_id)
            if ow is not None and ow.type == 0:
                allow |= ow.allow
                deny |= ow.deny
        perms = (perms & ~deny) | allow
        own = by_id.get(user_id)
        if own is not None and own.type == 1:
            perms = (perms & ~own.deny) | own.allow
        # Without View Channel nothing else in the channel applies.
        if not perms & Perm.VIEW_CHANNEL:
            return 0
        return perms

    def to_payload(self, *, bot_id: int, all_members: bool) -> dict[str, Any]:
        """The GUILD_CREATE payload; without the members intent only the bot's member is sent."""
        members = [m.to_payload() for m in self.members.values() if all_members or m.id == bot_id]
        joined = self.members[bot_id].joined_at if bot_id in self.members else time.time()
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "preferred_locale": self.preferred_locale,
            "features": [],
            "roles": [r.to_payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "members": members,
            "member_count": len(self.members),
            "channels": [c.to_payload() for c in self.channels.values() if not c.is_thread],
            "threads": [c.to_payload() for c in self.channels.values() if c.is_thread],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "unavailable": False,
            "lazy": True,
            "joined_at": iso(joined),
            "application_id": None,
            "max_members": 500000,
        }


GENERIC_TYPES = frozenset({"", "application/octet-stream"})


def sniff_image(data: bytes) -> tuple[str, int, int] | None:
    """Content type, width and height of a PNG, JPEG, GIF or WebP, read from its header."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return "image/png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return (
            "image/gif",
            int.from_bytes(data[6:8], "little"),
            int.from_bytes(data[8:10], "little"),
        )
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[str, int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
    elif chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
    else:
        return None
    return "image/webp", width, height


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    """Walk the JPEG markers to the first start-of-frame, which holds the size."""
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return "image/jpeg", width, height
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


@dataclass(slots=True)
class FakeAttachment:
    """A stored file. The payload's `content_type` is the one given (unless generic), else
    the sniffed image type, else a guess from the filename; `width`/`height` are the given
    ones, else read from the image header. Both can lie on purpose, for tests."""

    id: int
    filename: str
    data: bytes
    url: str
    content_type: str | None = None
    description: str | None = None
    width: int | None = None
    height: int | None = None
    ephemeral: bool = False  # a user's upload to a slash command option

    @property
    def size(self) -> int:
        return len(self.data)

    def image_size(self) -> tuple[int, int] | None:
        """Width and height (given, or read from a PNG/JPEG/GIF/WebP header), else None."""
        if self.width is not None and self.height is not None:
            return self.width, self.height
        sniffed = sniff_image(self.data)
        return None if sniffed is None else (sniffed[1], sniffed[2])

    def media_type(self) -> str | None:
        """The content type Discord reports and serves for this file."""
        if self.content_type and self.content_type not in GENERIC_TYPES:
            return self.content_type
        sniffed = sniff_image(self.data)
        if sniffed is not None:
            return sniffed[0]
        guessed, _ = mimetypes.guess_type(self.filename)
        return guessed or self.content_type

    def to_payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
        }
        media_type = self.media_type()
        if media_type:
            data["content_type"] = media_type
        if self.description is not None:
            data["description"] = self.description
        dims = self.image_size()
        if dims is not None:
            data["width"], data["height"] = dims
        if self.ephemeral:
            data["ephemeral"] = True
        return data


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


@dataclass(slots=True)
class FakeMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    reactions: dict[str, list[int]] = field(default_factory=dict)  # emoji key -> user ids
    flags: int = 0
    type: int = 0
    message_reference: dict[str, Any] | None = None
    allowed_mentions: dict[str, Any] | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    components: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    edited_at: float | None = None
    deleted: bool = False
    versions: list[dict[str, Any]] = field(default_factory=list)  # payload after each write

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & MessageFlag.EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & MessageFlag.LOADING)

    def component(self, custom_id: str) -> dict[str, Any] | None:
        """The component (button, select) with this `custom_id`, in any action row."""
        return next(
            (c for c in iter_components(self.components) if c.get("custom_id") == custom_id), None
        )

    def reaction_users(self, emoji: str) -> list[int]:
        return list(self.reactions.get(emoji, []))

    def pings(self) -> set[str]:
        """Who this message would notify: `user:ID`, `role:ID`, `everyone` (Discord's rules).

        With no `allowed_mentions` every mention in the content pings; with one, only the
        listed kinds and ids do. An empty set means the message pings nobody.
        """
        am = self.allowed_mentions
        users = {int(u) for u in _USER_MENTION.findall(self.content)}
        roles = {int(r) for r in _ROLE_MENTION.findall(self.content)}
        everyone = "@everyone" in self.content or "@here" in self.content
        found: set[str] = set()
        if am is None:
            found |= {f"user:{u}" for u in users} | {f"role:{r}" for r in roles}
            if everyone:
                found.add("everyone")
            return found
        parse = set(am.get("parse", []))
        allowed_users = {int(u) for u in am.get("users", [])}
        allowed_roles = {int(r) for r in am.get("roles", [])}
        found |= {f"user:{u}" for u in users if "users" in parse or u in allowed_users}
        found |= {f"role:{r}" for r in roles if "roles" in parse or r in allowed_roles}
        if everyone and "everyone" in parse:
            found.add("everyone")
        return found

    def to_payload(self, *, bot_id: int, referenced: FakeMessage | None = None) -> dict[str, Any]:
        """The message as the bot sees it (`me` on reactions means the bot reacted)."""
        reactions = [
            {
                "emoji": emoji_payload(key),
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "me": bot_id in users,
                "me_burst": False,
                "burst_colors": [],
            }
            for key, users in self.reactions.items()
            if users
        ]
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "channel_id": str(self.channel_id),
            "author": self.author.to_payload(),
            "content": self.content,
            "timestamp": iso(self.created_at),
            "edited_timestamp": None if self.edited_at is None else iso(self.edited_at),
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [a.to_payload() for a in self.attachments],
            "embeds": list(self.embeds),
            "reactions": reactions,
            "pinned": False,
            "flags": self.flags,
            "components": list(self.components),
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        if self.application_id is not None:
            data["application_id"] = str(self.application_id)
        if self.interaction_metadata is not None:
            data["interaction_metadata"] = self.interaction_metadata
        if self.message_reference is not None:
            data["message_reference"] = self.message_reference
            data["referenced_message"] = (
                None if referenced is None else referenced.to_payload(bot_id=bot_id)
            )
        return data


def iter_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every component, depth first: rows, their buttons and selects, nested containers."""
    found: list[dict[str, Any]] = []
    for component in components:
        found.append(component)
        found += iter_components(list(component.get("components") or []))
        accessory = component.get("accessory")
        if isinstance(accessory, dict):
            found.append(accessory)
    return found


def emoji_key(raw: str) -> str:
    """The canonical key for an emoji from a URL or a payload: `🔁` or `name:id`."""
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw.strip("<>").removeprefix("a:")
    return raw


def emoji_payload(key: str) -> dict[str, Any]:
    """The `emoji` object Discord sends for a key made by `emoji_key`."""
    if ":" in key:
        name, _, emoji_id = key.rpartition(":")
        return {"id": emoji_id, "name": name, "animated": False}
    return {"id": None, "name": key}


def is_plausible_unicode_emoji(key: str) -> bool:
    """Discord answers Unknown Emoji for plain words; real emoji are non-ASCII."""
    if ":" in key:
        name, _, emoji_id = key.rpartition(":")
        return bool(name) and emoji_id.isdigit()
    return bool(key) and any(ord(ch) > 0x7F for ch in key)


@dataclass(slots=True)
class FakeCommand:
    """A registered application command: the payload as sent, plus Discord's fields."""

    id: int
    application_id: int
    guild_id: int | None
    payload: dict[str, Any]
    version: int

    @property
    def name(self) -> str:
        return str(self.payload["name"])

    @property
    def type(self) -> int:
        return int(self.payload.get("type", 1))

    def to_payload(self) -> dict[str, Any]:
        data = dict(self.payload)
        data.setdefault("type", 1)
        data.setdefault("description", "")
        data.setdefault("options", [])
        data.setdefault("default_member_permissions", None)
        data.setdefault("nsfw", False)
        if data["default_member_permissions"] is not None:
            # Sent as an int by discord.py, stored and returned by Discord as a string.
            data["default_member_permissions"] = str(data["default_member_permissions"])
        data.update(
            id=str(self.id),
            application_id=str(self.application_id),
            version=str(self.version),
        )
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        return data


@dataclass(slots=True)
class FakeApplication:
    id: int
    name: str
    owner: FakeUser
    bot: FakeUser
    flags: int = 0
    privileged_intents: int = 0  # which privileged intents the developer portal enables

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "description": "A fake application for end-to-end tests.",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.owner.to_payload(),
            "team": None,
            "flags": self.flags,
            "bot": self.bot.to_payload(),
            "rpc_origins": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": 1,
            "tags": [],
        }
