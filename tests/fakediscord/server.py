"""`FakeDiscord`: the loopback server and the harness API tests drive it with.

One aiohttp server on 127.0.0.1 (random port) serves REST under `/api/v10`, the gateway
WebSocket at `/` (and `/resume`, the `resume_gateway_url`), and attachment downloads.
Everything runs on the test's event loop; the bot talks to it over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yarl
from aiohttp import web

from .gateway import Gateway, GatewaySession
from .interactions import (
    LOCALES,
    InteractionRecord,
    OptionBuilder,
    build_options,
    resolve_id,
)
from .ratelimit import ChannelRateLimit
from .rest import FaultRule, RequestRecord, RestApi
from .spec import DiscordSpec, SpecViolation, discord_spec
from .state import (
    FakeApplication,
    FakeAttachment,
    FakeChannel,
    FakeCommand,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    Intent,
    MessageFlag,
    Overwrite,
    Perm,
    SnowflakeFactory,
    emoji_key,
    emoji_payload,
)

_log = logging.getLogger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Place:
    """Where an interaction happens: guild, channel, the acting member, locale, permissions."""

    guild: FakeGuild
    channel: FakeChannel
    member: FakeMember
    locale: str
    permissions: int


class SpecViolationError(AssertionError):
    """Raised when the fake stops: calls were made that Discord's OpenAPI spec refuses."""

    def __init__(self, violations: list[SpecViolation]) -> None:
        self.violations = violations
        lines = "\n".join(f"  - {v}" for v in violations)
        super().__init__(
            f"{len(violations)} call(s) broke Discord's API spec "
            f"(tests/fakediscord/spec/openapi.json):\n{lines}"
        )


@dataclass(frozen=True, slots=True)
class CommandSync:
    """One bulk overwrite (`tree.sync()`): where, when, which names, how many were new."""

    at: float
    guild_id: int | None
    names: tuple[str, ...]
    created: int


class FakeDiscord:
    """A fake Discord for one application and its bot, with a populated test guild.

    Use `async with FakeDiscord() as fake, fake.redirect(): ...` or the `fake_discord`
    fixture from `tests.fakediscord.plugin`. Defaults: guild `fake.guild` with channel
    `fake.channel`; users `fake.owner` (guild owner), `fake.moderator` (Manage Server),
    `fake.alice`, `fake.bob` (plain members); the bot is `fake.bot_user`.
    """

    def __init__(
        self,
        *,
        # Shaped like a real token (`run` checks the format before connecting): the first part
        # is base64 of an id, the rest is not a secret.
        token: str = "MTIzNDU2Nzg5MDEyMzQ1Njc4.RmFrZQ.fake-discord-bot-token-not-a-secret",
        interaction_deadline: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        max_file_size: int = 10 * MiB,
        heartbeat_interval_ms: int = 41_250,
        privileged_intents: int = 0,
        channel_rate_limit: ChannelRateLimit | None = None,
        populate: bool = True,
        hold_to_spec: bool = True,
    ) -> None:
        self.token = token
        self.interaction_deadline = interaction_deadline
        self.token_lifetime = token_lifetime
        self.max_file_size = max_file_size
        self.snowflakes = SnowflakeFactory()
        self.users: dict[int, FakeUser] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.messages: dict[int, FakeMessage] = {}
        # (channel id, nonce) -> message id, for `enforce_nonce` on message creation.
        self.nonces: dict[tuple[int, str], int] = {}
        self.attachments: dict[int, FakeAttachment] = {}
        self.downloads: list[int] = []  # attachment ids, in the order they were fetched
        self.commands: dict[int | None, list[FakeCommand]] = {}
        self.command_syncs: list[CommandSync] = []
        self.command_creates: dict[int | None, int] = {}
        # guild id -> {command id, or the application id for every command -> permissions[]}:
        # what admins set in Server Settings -> Integrations (`set_command_permissions`).
        self.command_permissions: dict[int, dict[int, list[dict[str, Any]]]] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.interactions_by_token: dict[str, InteractionRecord] = {}
        self.requests: list[RequestRecord] = []
        self.faults: list[FaultRule] = []
        # Discord's OpenAPI description: every REST call is checked against it; what breaks
        # it is refused as Discord would and kept here (see `take_spec_violations`).
        self.spec: DiscordSpec | None = discord_spec() if hold_to_spec else None
        self.spec_violations: list[SpecViolation] = []
        # Discord's 5 posts per 5 s per channel; None (the default) lets every post through.
        self.channel_rate_limit = channel_rate_limit
        self.gateway = Gateway(self, heartbeat_interval_ms=heartbeat_interval_ms)
        self.rest = RestApi(self)
        self._clock_offset = 0.0
        self._waiters: list[asyncio.Future[None]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

        owner = self.add_user("fake-owner")
        self.bot_user = self.add_user("Pokemon Bot", bot=True)
        self.application = FakeApplication(
            id=self.snowflakes.next(),
            name="Pokemon Bot",
            owner=owner,
            bot=self.bot_user,
            privileged_intents=privileged_intents,
        )
        self.owner = owner
        if populate:
            self.guild = self.add_guild("Fake Guild", owner=owner)
            self.channel = next(iter(self.guild.channels.values()))
            self.moderator = self.add_user("moderator")
            self.alice = self.add_user("alice")
            self.bob = self.add_user("bob")
            mod_role = self.add_role(self.guild, "Moderator", Perm.MANAGE_GUILD)
            self.add_member(self.guild, self.moderator, roles=[mod_role])
            self.add_member(self.guild, self.alice)
            self.add_member(self.guild, self.bob)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1, on a free port."""
        # Uploads up to the 10 MiB limit (and beyond, so we can answer 413 ourselves).
        app = web.Application(client_max_size=64 * MiB, middlewares=[self.rest.middleware])
        app.router.add_get("/", self.gateway.handle)
        app.router.add_get("/resume", self.gateway.handle)
        self.rest.install(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        _log.debug("fake discord listening on port %s", self.port)

    async def stop(self) -> None:
        """Close every connection and the listener."""
        for conn in list(self.gateway.connections):
            if not conn.ws.closed:
                conn.dropped = True
                await conn.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        await self.stop()
        if self.spec_violations:
            failure = SpecViolationError(self.take_spec_violations())
            if exc is None:
                raise failure
            exc.add_note(str(failure))

    def take_spec_violations(self) -> list[SpecViolation]:
        """The calls that broke Discord's spec so far, and forget them: a test that makes
        one on purpose takes it, so that the fake does not fail the test when it stops."""
        taken, self.spec_violations = self.spec_violations, []
        return taken

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/resume"

    @contextlib.contextmanager
    def redirect(self) -> Iterator[None]:
        """Point discord.py's REST base and gateway at this fake; restore them on exit."""
        import discord.gateway
        import discord.http

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # -- clock and waiting -----------------------------------------------------------------

    def now(self) -> float:
        """The fake's monotonic clock (seconds); `advance_time` moves it forward."""
        return time.monotonic() + self._clock_offset

    def advance_time(self, seconds: float) -> None:
        """Make the fake believe `seconds` passed (deadlines, token expiry); not discord.py."""
        self._clock_offset += seconds
        self.notify()

    def notify(self) -> None:
        """Wake every `wait_until` so it re-checks its condition."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_until(self, predicate: Callable[[], Any], within: float = 10.0) -> None:
        """Wait until `predicate()` is truthy; re-checked on every change the fake sees."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"fake discord: condition not met within {within}s")
            waiter = loop.create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                # Also wake periodically: some conditions depend on things we are not told.
                await asyncio.wait_for(waiter, min(remaining, 0.02))

    # -- building the world ----------------------------------------------------------------

    def add_user(self, username: str, *, bot: bool = False) -> FakeUser:
        """A new user (not yet in any guild)."""
        user = FakeUser(id=self.snowflakes.next(), username=username, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(
        self,
        name: str,
        *,
        owner: FakeUser | None = None,
        with_bot: bool = True,
        bot_permissions: int = Perm.BOT_DEFAULT,
        everyone_permissions: int = Perm.EVERYONE_DEFAULT,
        preferred_locale: str = "en-US",
    ) -> FakeGuild:
        """A guild with @everyone, a `general` text channel, its owner and (by default) the bot.

        Call before the client connects, or the bot will not see it in READY.
        """
        owner = owner or self.owner
        guild_id = self.snowflakes.next()
        guild = FakeGuild(
            id=guild_id, name=name, owner_id=owner.id, preferred_locale=preferred_locale
        )
        guild.roles[guild_id] = FakeRole(guild_id, "@everyone", everyone_permissions, 0)
        guild.members[owner.id] = FakeMember(owner, guild_id)
        self.add_channel(guild, "general")
        if with_bot:
            bot_role = FakeRole(
                self.snowflakes.next(),
                self.bot_user.username,
                bot_permissions,
                1,
                True,
                self.bot_user.id,
            )
            guild.roles[bot_role.id] = bot_role
            guild.members[self.bot_user.id] = FakeMember(self.bot_user, guild_id, [bot_role.id])
        self.guilds[guild_id] = guild
        return guild

    def add_role(self, guild: FakeGuild, name: str, permissions: int = 0) -> FakeRole:
        role = FakeRole(self.snowflakes.next(), name, permissions, len(guild.roles))
        guild.roles[role.id] = role
        return role

    def add_channel(self, guild: FakeGuild, name: str, *, type: int = 0) -> FakeChannel:
        channel = FakeChannel(
            self.snowflakes.next(), guild.id, name, type=type, position=len(guild.channels)
        )
        guild.channels[channel.id] = channel
        return channel

    def add_thread(self, parent: FakeChannel, name: str, *, type: int = 11) -> FakeChannel:
        """A (public) thread in `parent`: sent in GUILD_CREATE's `threads`, served by
        `GET /channels/{id}` with its `thread_metadata`; commands and presses work in it."""
        thread = self.add_channel(self.guilds[parent.guild_id], name, type=type)
        thread.parent_id = parent.id
        return thread

    def add_member(
        self,
        guild: FakeGuild,
        user: FakeUser,
        *,
        roles: list[FakeRole] | None = None,
        permissions: int | None = None,
    ) -> FakeMember:
        """Put `user` in `guild`; `permissions` adds a personal role carrying exactly those."""
        role_ids = [r.id for r in roles or []]
        if permissions is not None:
            role_ids.append(self.add_role(guild, f"{user.username}-role", permissions).id)
        member = FakeMember(user, guild.id, role_ids)
        guild.members[user.id] = member
        return member

    def guild_of_channel(self, channel_id: int) -> FakeGuild | None:
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild
        return None

    # -- harness: permissions and membership -----------------------------------------------

    async def set_overwrite(
        self, channel: FakeChannel | int, target: Any, *, allow: int = 0, deny: int = 0
    ) -> None:
        """Set a channel overwrite for a role or member (replacing theirs); CHANNEL_UPDATE."""
        cid = resolve_id(channel)
        guild = self.guild_of_channel(cid)
        if guild is None:
            raise ValueError(f"unknown channel {cid}")
        chan = guild.channels[cid]
        target_id = resolve_id(target)
        kind = 0 if target_id in guild.roles else 1
        chan.overwrites = [o for o in chan.overwrites if o.id != target_id]
        chan.overwrites.append(Overwrite(target_id, kind, allow, deny))
        await self.gateway.dispatch("CHANNEL_UPDATE", chan.to_payload(), intent=Intent.GUILDS)
        self.notify()

    async def deny_channel_permission(
        self, channel: FakeChannel | int, permissions: int, *, target: Any = None
    ) -> None:
        """Deny `permissions` in a channel to `target` (default: the bot)."""
        await self.set_overwrite(channel, target or self.bot_user, deny=permissions)

    async def remove_bot_from_guild(self, guild: FakeGuild | int) -> None:
        """Kick the bot: it leaves the member list and gets GUILD_DELETE."""
        gid = resolve_id(guild)
        target = self.guilds.get(gid)
        if target is None:
            raise ValueError(f"unknown guild {gid}")
        target.members.pop(self.bot_user.id, None)
        await self.gateway.dispatch("GUILD_DELETE", {"id": str(gid)}, intent=Intent.GUILDS)
        self.notify()

    # -- harness: gateway ------------------------------------------------------------------

    async def drop_gateway(self, *, code: int = 4000, abort: bool = False) -> int:
        """Cut the gateway connection(s); the client should come back with RESUME."""
        return await self.gateway.drop(code=code, abort=abort)

    async def wait_resumed(self, count: int = 1, within: float = 15.0) -> None:
        """Wait until `count` RESUMEs in total have succeeded."""
        await self.wait_until(lambda: self.gateway.resume_count >= count, within)

    async def wait_connected(self, within: float = 15.0) -> GatewaySession:
        """Wait for a live, identified gateway session and return it."""
        await self.wait_until(self.gateway.live_sessions, within)
        return self.gateway.live_sessions()[0]

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT: the client must reconnect and resume."""
        await self.gateway.send_op(7)

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; with `resumable=False` the client must IDENTIFY again."""
        sessions = self.gateway.live_sessions()
        await self.gateway.send_op(9, resumable)
        if not resumable:
            for session in sessions:
                session.ended = True
        self.notify()

    def dispatched(self, event: str) -> list[dict[str, Any]]:
        """Payloads of every `event` the fake has sent (first sends and replays alike)."""
        return [f.d for f in self.gateway.frames if f.direction == "send" and f.t == event]

    async def wait_for_event(
        self,
        event: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        within: float = 10.0,
    ) -> dict[str, Any]:
        """Wait until the fake has sent an `event` matching `predicate`; return its payload."""

        def found() -> dict[str, Any] | None:
            return next(
                (d for d in self.dispatched(event) if predicate is None or predicate(d)), None
            )

        await self.wait_until(lambda: found() is not None, within)
        result = found()
        assert result is not None
        return result

    # -- harness: faults and the request log -----------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        times: int = 1,
        status: int = 429,
        retry_after: float = 0.05,
        scope: str = "user",
        is_global: bool = False,
        process: bool = False,
    ) -> FaultRule:
        """Answer the next `times` calls of `method` on `path` (a glob) with `status`.

        `path` is matched against the decoded path without `/api/v10`, e.g.
        `"/webhooks/*/*/messages/@original"` or `"/channels/*/messages"`; `method` may be
        `"*"`. 429 answers carry `retry_after`, `Via` and `X-RateLimit-*` as Discord sends
        them. With `process=True` the call is carried out before the error is returned.
        """
        rule = FaultRule(
            method=method.upper(),
            path=path,
            status=status,
            remaining=times,
            retry_after=retry_after,
            scope=scope,
            is_global=is_global,
            process=process,
        )
        self.faults.append(rule)
        return rule

    def drop_next(
        self, method: str, path: str, *, times: int = 1, process: bool = False
    ) -> FaultRule:
        """Cut the TCP connection of the next `times` calls of `method` on `path` (a glob).

        The client gets no answer: aiohttp raises `ServerDisconnectedError`. With
        `process=False` the call has no effect (cut before it is stored); with `process=True`
        it is carried out first (the message was created or edited, the answer was lost).
        The request log shows the call with `dropped=True` and the status it would have had
        (0 when it was not carried out).
        """
        rule = FaultRule(
            method=method.upper(), path=path, remaining=times, process=process, drop=True
        )
        self.faults.append(rule)
        return rule

    def limit_channel_messages(self, limit: int = 5, window: float = 5.0) -> ChannelRateLimit:
        """Turn on Discord's per-channel limit on message posts (`limit` per `window` s)."""
        self.channel_rate_limit = ChannelRateLimit(limit=limit, window=window)
        return self.channel_rate_limit

    def requests_to(
        self, method: str, path: str, *, status: int | None = None
    ) -> list[RequestRecord]:
        """Logged REST calls matching `method` (or `*`) and a path glob (and `status`)."""
        return [
            r
            for r in self.requests
            if method.upper() in ("*", r.method)
            and fnmatch.fnmatchcase(r.path, path)
            and (status is None or r.status == status)
        ]

    # -- harness: commands -----------------------------------------------------------------

    def registered_commands(self, guild: FakeGuild | int | None = None) -> list[dict[str, Any]]:
        """Command payloads as Discord stores them, global (default) or for one guild."""
        scope = None if guild is None else resolve_id(guild)
        return [c.to_payload() for c in self.commands.get(scope, [])]

    async def set_command_permissions(
        self, guild: FakeGuild | int, command: str | None, permissions: list[dict[str, Any]]
    ) -> None:
        """An admin edits a command's permissions in Integrations (`command` None: the whole
        application's). `permissions` are Discord's entries (`{"id", "type": 1 role | 2 user
        | 3 channel, "permission": bool}`; channel `guild_id - 1` is every channel). Sends
        APPLICATION_COMMAND_PERMISSIONS_UPDATE (no intent needed) and serves them at
        `GET /applications/{app}/guilds/{guild}/commands[/{command}]/permissions`."""
        gid = resolve_id(guild)
        if command is None:
            target = self.application.id
        else:
            found = self._find_command(command, gid)
            if found is None:
                raise ValueError(f"/{command} is not registered")
            target = found.id
        entries = [
            {
                "id": str(resolve_id(p["id"])),
                "type": int(p["type"]),
                "permission": bool(p["permission"]),
            }
            for p in permissions
        ]
        self.command_permissions.setdefault(gid, {})[target] = entries
        await self.gateway.dispatch(
            "APPLICATION_COMMAND_PERMISSIONS_UPDATE", self.command_permissions_payload(gid, target)
        )
        self.notify()

    def command_permissions_payload(self, guild_id: int, target: int) -> dict[str, Any]:
        """One GuildApplicationCommandPermissions object as Discord sends it."""
        return {
            "id": str(target),
            "application_id": str(self.application.id),
            "guild_id": str(guild_id),
            "permissions": self.command_permissions.get(guild_id, {}).get(target, []),
        }

    def sync_count(self, guild: FakeGuild | int | None = None) -> int:
        """How many bulk overwrites (`tree.sync`) hit this scope."""
        scope = None if guild is None else resolve_id(guild)
        return sum(1 for s in self.command_syncs if s.guild_id == scope)

    def replace_commands(
        self, scope: int | None, payloads: list[dict[str, Any]]
    ) -> list[FakeCommand]:
        """Bulk overwrite: ids survive for the same (name, type); counts new creations."""
        old = {(c.name, c.type): c for c in self.commands.get(scope, [])}
        result: list[FakeCommand] = []
        created = 0
        for payload in payloads:
            key = (str(payload["name"]), int(payload.get("type", 1)))
            command = old.get(key)
            if command is None:
                created += 1
                command = FakeCommand(
                    self.snowflakes.next(),
                    self.application.id,
                    scope,
                    payload,
                    self.snowflakes.next(),
                )
            elif command.payload != payload:
                command.payload = payload
                command.version = self.snowflakes.next()
            result.append(command)
        self.commands[scope] = result
        self.command_creates[scope] = self.command_creates.get(scope, 0) + created
        self.command_syncs.append(
            CommandSync(self.now(), scope, tuple(c.name for c in result), created)
        )
        self.notify()
        return result

    def upsert_command(
        self, scope: int | None, payload: dict[str, Any]
    ) -> tuple[FakeCommand, bool]:
        commands = self.commands.setdefault(scope, [])
        key = (str(payload["name"]), int(payload.get("type", 1)))
        for command in commands:
            if (command.name, command.type) == key:
                command.payload = payload
                command.version = self.snowflakes.next()
                return command, False
        command = FakeCommand(
            self.snowflakes.next(), self.application.id, scope, payload, self.snowflakes.next()
        )
        commands.append(command)
        self.command_creates[scope] = self.command_creates.get(scope, 0) + 1
        self.notify()
        return command, True

    def _find_command(self, root: str, guild_id: int | None) -> FakeCommand | None:
        scopes: list[int | None] = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command.name == root and command.type == 1:
                    return command
        return None

    # -- harness: users acting -------------------------------------------------------------

    async def invoke(
        self,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: Any = None,
        guild: Any = None,
        channel: Any = None,
        locale: str = "en-US",
        permissions: int | None = None,
        age: float = 0.0,
        strict: bool = True,
    ) -> InteractionRecord:
        """A user runs a slash command: sends INTERACTION_CREATE (type 2) and returns its record.

        `command` is the full name, sub-commands included: `"ratelimit set"`. Option types
        come from the registered command (`strict`: it must be registered and the values
        must be ones the Discord client would send). `user` defaults to `fake.alice`;
        `permissions` overrides the member's computed channel permissions; `age` back-dates
        the interaction (its snowflake and token) by that many seconds, to test the
        15-minute token end without waiting. `locale="en"` is taken as `en-US`.
        """
        where = self._interaction_place(user, guild, channel, locale, permissions)
        path = command.strip().lstrip("/").split()
        root, sub_path = path[0], path[1:]
        registered = self._find_command(root, where.guild.id)
        if registered is None and strict:
            raise ValueError(
                f"/{root} is not registered (globally or in guild {where.guild.id}); "
                "sync the command tree first, or pass strict=False"
            )
        schema = registered.payload.get("options") or [] if registered is not None else None
        builder = OptionBuilder(self, where.guild, where.channel.id)
        wire_options = build_options(builder, schema, sub_path, dict(options or {}), strict=strict)
        data: dict[str, Any] = {"name": root, "type": 1, "options": wire_options}
        if registered is not None:
            data["id"] = str(registered.id)
            if registered.guild_id is not None:
                data["guild_id"] = str(registered.guild_id)
        else:
            data["id"] = str(self.snowflakes.next())
        if builder.resolved:
            data["resolved"] = builder.resolved
        return await self._deliver_interaction(
            where, 2, data, command=" ".join(path), options=dict(options or {}), age=age
        )

    async def press(
        self,
        message: FakeMessage | int,
        custom_id: str,
        *,
        user: Any = None,
        values: list[str] | None = None,
        locale: str = "en-US",
        permissions: int | None = None,
        age: float = 0.0,
        strict: bool = True,
    ) -> InteractionRecord:
        """A user presses a button (or picks `values` in a select) on a message: sends
        INTERACTION_CREATE type 3 (MESSAGE_COMPONENT) and returns its record.

        With `strict` the component must be on the message and enabled, and an ephemeral
        message can only be used by the user it was shown to (`ValueError` otherwise).
        The bot may answer with a new message (4, 5), or update the pressed message (7, or 6
        and then edit `@original`, which is that message).
        """
        target = self.messages.get(resolve_id(message))
        if target is None or target.deleted:
            raise ValueError(f"no message {resolve_id(message)} to press a component on")
        user_id = resolve_id(user if user is not None else self.alice)
        component = target.component(custom_id)
        if strict:
            if component is None:
                raise ValueError(f"message {target.id} has no component {custom_id!r}")
            if component.get("disabled"):
                raise ValueError(f"component {custom_id!r} is disabled")
            shown_to = (target.interaction_metadata or {}).get("user", {}).get("id")
            if target.ephemeral and shown_to != str(user_id):
                raise ValueError("only the user an ephemeral message was shown to can use it")
        component_type = int((component or {}).get("type", 2))
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        where = self._interaction_place(user_id, None, target.channel_id, locale, permissions)
        return await self._deliver_interaction(
            where,
            3,
            data,
            command="",
            options={},
            age=age,
            message=target,
        )

    async def submit_form(
        self,
        message: FakeMessage | int,
        custom_id: str,
        values: Mapping[str, str],
        *,
        user: Any = None,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """A user sends a form (a modal the bot opened from a component on `message`) with
        `values` by text input id: INTERACTION_CREATE type 5 (MODAL_SUBMIT). The bot may
        answer as it would a component (6, 7 update `message`) or with a message (4, 5)."""
        target = self.messages.get(resolve_id(message))
        if target is None or target.deleted:
            raise ValueError(f"no message {resolve_id(message)} the form came from")
        user_id = resolve_id(user if user is not None else self.alice)
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
        data: dict[str, Any] = {"custom_id": custom_id, "components": rows}
        where = self._interaction_place(user_id, None, target.channel_id, locale, None)
        return await self._deliver_interaction(
            where, 5, data, command="", options={}, age=0.0, message=target
        )

    def _interaction_place(
        self, user: Any, guild: Any, channel: Any, locale: str, permissions: int | None
    ) -> _Place:
        """Who acts where, checked as Discord would before it delivers an interaction."""
        if locale == "en":
            locale = "en-US"
        if locale not in LOCALES:
            raise ValueError(f"{locale!r} is not a Discord locale (one of {sorted(LOCALES)})")
        user_id = resolve_id(user if user is not None else self.alice)
        invoker = self.users.get(user_id)
        if invoker is None:
            raise ValueError(f"unknown user {user_id}")
        chan_id = resolve_id(channel) if channel is not None else None
        target_guild: FakeGuild | None
        if guild is not None:
            target_guild = self.guilds.get(resolve_id(guild))
        elif chan_id is not None:
            target_guild = self.guild_of_channel(chan_id)
        else:
            target_guild = self.guild
        if target_guild is None:
            raise ValueError("unknown guild for this invocation")
        if chan_id is None:
            chan_id = next(c.id for c in target_guild.channels.values() if c.type == 0)
        chan = target_guild.channels.get(chan_id)
        if chan is None:
            raise ValueError(f"channel {chan_id} is not in guild {target_guild.id}")
        member = target_guild.members.get(user_id)
        if member is None:
            raise ValueError(f"user {user_id} is not a member of guild {target_guild.id}")
        if self.bot_user.id not in target_guild.members:
            raise ValueError("the bot is not in this guild; Discord would not deliver the command")
        perms = (
            permissions
            if permissions is not None
            else target_guild.channel_permissions(user_id, chan.id)
        )
        return _Place(target_guild, chan, member, locale, perms)

    async def _deliver_interaction(
        self,
        where: _Place,
        kind: int,
        data: dict[str, Any],
        *,
        command: str,
        options: dict[str, Any],
        age: float,
        message: FakeMessage | None = None,
    ) -> InteractionRecord:
        """Build the INTERACTION_CREATE payload, record it, and send it through the gateway."""
        guild, chan = where.guild, where.channel
        app_perms = guild.channel_permissions(self.bot_user.id, chan.id)
        interaction_id = self.snowflakes.next(at=time.time() - age)
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        member_payload = where.member.to_payload()
        member_payload["permissions"] = str(where.permissions)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application.id),
            "type": kind,
            "token": token,
            "version": 1,
            "data": data,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
            "guild_locale": guild.preferred_locale,
            "channel_id": str(chan.id),
            "channel": {**chan.to_payload(), "permissions": str(app_perms)},
            "member": member_payload,
            "locale": where.locale,
            "app_permissions": str(app_perms),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": self.max_file_size,
        }
        if message is not None:
            payload["message"] = self.message_payload(message)
        now = self.now()
        record = InteractionRecord(
            fake=self,
            id=interaction_id,
            token=token,
            command=command,
            options=options,
            user_id=where.member.id,
            guild_id=guild.id,
            channel_id=chan.id,
            locale=where.locale,
            payload=payload,
            delivered_at=now,
            token_born_at=now - age,
            type=kind,
            custom_id=data.get("custom_id") if kind == 3 else None,
            message_id=None if message is None else message.id,
        )
        self.interactions[interaction_id] = record
        self.interactions_by_token[token] = record
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        self.notify()
        return record

    async def react(self, user: Any, channel_id: Any, message_id: Any, emoji: str) -> None:
        """A user adds a reaction: state changes and MESSAGE_REACTION_ADD goes out."""
        uid, cid, mid = resolve_id(user), resolve_id(channel_id), resolve_id(message_id)
        message = self.messages.get(mid)
        if message is None or message.channel_id != cid or message.deleted:
            raise ValueError(f"no message {mid} in channel {cid}")
        if message.ephemeral:
            raise ValueError("nobody can react to an ephemeral message")
        await self.add_reaction_state(message, uid, emoji_key(emoji))
        self.notify()

    async def unreact(self, user: Any, channel_id: Any, message_id: Any, emoji: str) -> None:
        """A user removes a reaction: MESSAGE_REACTION_REMOVE."""
        message = self.messages.get(resolve_id(message_id))
        if message is None or message.channel_id != resolve_id(channel_id):
            raise ValueError("unknown message")
        await self.remove_reaction_state(message, resolve_id(user), emoji_key(emoji))
        self.notify()

    async def post_message(
        self, user: Any, channel: Any, content: str, *, reply_to: Any = None
    ) -> FakeMessage:
        """A user writes in a channel: MESSAGE_CREATE (content hidden without the intent)."""
        cid = resolve_id(channel)
        guild = self.guild_of_channel(cid)
        author = self.users[resolve_id(user)]
        message = FakeMessage(
            id=self.snowflakes.next(),
            channel_id=cid,
            guild_id=None if guild is None else guild.id,
            author=author,
            content=content,
        )
        if reply_to is not None:
            message.type = 19
            message.message_reference = {
                "type": 0,
                "message_id": str(resolve_id(reply_to)),
                "channel_id": str(cid),
                "guild_id": None if guild is None else str(guild.id),
            }
        message.versions.append(message.to_payload(bot_id=self.bot_user.id))
        self.store_message(message)
        await self.echo_message_create(message)
        self.notify()
        return message

    # -- messages (shared by the REST handlers) --------------------------------------------

    def channel_messages(self, channel: Any) -> list[FakeMessage]:
        """Live (not deleted) messages of a channel, oldest first, ephemeral ones included."""
        cid = resolve_id(channel)
        return sorted(
            (m for m in self.messages.values() if m.channel_id == cid and not m.deleted),
            key=lambda m: m.id,
        )

    def bot_messages(self, channel: Any = None) -> list[FakeMessage]:
        """Live messages the bot authored (anywhere, or in one channel)."""
        found = [
            m for m in self.messages.values() if not m.deleted and m.author.id == self.bot_user.id
        ]
        if channel is not None:
            found = [m for m in found if m.channel_id == resolve_id(channel)]
        return sorted(found, key=lambda m: m.id)

    def store_message(self, message: FakeMessage) -> None:
        self.messages[message.id] = message
        guild = self.guild_of_channel(message.channel_id)
        if guild is not None and not message.ephemeral:
            guild.channels[message.channel_id].last_message_id = message.id

    def store_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        description: str | None = None,
        width: int | None = None,
        height: int | None = None,
        ephemeral: bool = False,
    ) -> FakeAttachment:
        """Keep a file and serve it at `url` (`/attachments/{channel}/{id}/{filename}`)."""
        attachment_id = self.snowflakes.next()
        quoted = urllib.parse.quote(filename)
        url = f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{quoted}"
        attachment = FakeAttachment(
            attachment_id,
            filename,
            data,
            url,
            content_type,
            description,
            width=width,
            height=height,
            ephemeral=ephemeral,
        )
        self.attachments[attachment_id] = attachment
        return attachment

    def upload(
        self,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
        channel: Any = None,
    ) -> FakeAttachment:
        """A file a user attaches to a slash command option (type 11): pass the result as
        the option's value. It is served at its `url`; `content_type`, `width` and `height`
        default to what the bytes say (PNG, JPEG, GIF, WebP) and may be set to lie."""
        return self.store_attachment(
            resolve_id(channel if channel is not None else self.channel),
            filename,
            data,
            content_type=content_type,
            width=width,
            height=height,
            ephemeral=True,
        )

    def message(self, message_id: Any) -> FakeMessage:
        """A message by id, as Discord holds it now (deleted ones too: see `.deleted`)."""
        found = self.messages.get(resolve_id(message_id))
        if found is None:
            raise KeyError(f"no message {resolve_id(message_id)}")
        return found

    async def delete_message(self, message: Any) -> None:
        """Someone (a moderator, the author) deletes a message: MESSAGE_DELETE goes out and
        the bot's later calls on it get 404 Unknown Message."""
        target = self.message(message)
        if not target.deleted:
            await self.delete_message_state(target)
        self.notify()

    def new_interaction_message(self, record: InteractionRecord, *, ephemeral: bool) -> FakeMessage:
        """An empty message authored by the bot on behalf of an interaction (not stored yet)."""
        user = self.users[record.user_id]
        message = FakeMessage(
            id=self.snowflakes.next(),
            channel_id=record.channel_id,
            guild_id=record.guild_id,
            author=self.bot_user,
            type=20,
            flags=MessageFlag.EPHEMERAL if ephemeral else 0,
            webhook_id=self.application.id,
            application_id=self.application.id,
            interaction_id=record.id,
        )
        message.interaction_metadata = {
            "id": str(record.id),
            "type": record.type,
            "user": user.to_payload(),
            "authorizing_integration_owners": {"0": str(record.guild_id)},
        }
        if record.type == 2:
            message.interaction_metadata["name"] = record.command
        elif record.message_id is not None:
            # A component's answer is a reply to the message the component is on.
            message.type = 19
            message.interaction_metadata["interacted_message_id"] = str(record.message_id)
            message.message_reference = {
                "type": 0,
                "message_id": str(record.message_id),
                "channel_id": str(record.channel_id),
                "guild_id": None if record.guild_id is None else str(record.guild_id),
            }
        return message

    def interaction_of_message(self, message: FakeMessage) -> InteractionRecord | None:
        """The slash command or component interaction whose answer `message` is, if any."""
        if message.interaction_id is None:
            return None
        return self.interactions.get(message.interaction_id)

    def message_payload(self, message: FakeMessage) -> dict[str, Any]:
        """The message as Discord returns it to the bot (with the replied-to message)."""
        referenced = None
        if message.message_reference is not None:
            ref_id = int(message.message_reference["message_id"])
            target = self.messages.get(ref_id)
            referenced = None if target is None or target.deleted else target
        return message.to_payload(bot_id=self.bot_user.id, referenced=referenced)

    def _event_payload(self, message: FakeMessage, session: GatewaySession) -> dict[str, Any]:
        data = self.message_payload(message)
        guild = self.guild_of_channel(message.channel_id)
        if guild is not None and message.author.id in guild.members:
            data["member"] = guild.members[message.author.id].to_payload(with_user=False)
        mentions_bot = f"<@{self.bot_user.id}>" in message.content
        hidden = (
            message.author.id != self.bot_user.id
            and not mentions_bot
            and not session.intents & Intent.MESSAGE_CONTENT
        )
        if hidden:
            # Without the Message Content intent Discord blanks other people's messages.
            data.update(content="", embeds=[], attachments=[], components=[])
        return data

    async def echo_message_create(self, message: FakeMessage) -> None:
        if message.ephemeral:
            return  # ephemeral messages never reach the gateway
        await self.gateway.dispatch(
            "MESSAGE_CREATE",
            lambda session: self._event_payload(message, session),
            intent=Intent.GUILD_MESSAGES,
        )

    async def echo_message_update(self, message: FakeMessage) -> None:
        if message.ephemeral:
            return
        await self.gateway.dispatch(
            "MESSAGE_UPDATE",
            lambda session: self._event_payload(message, session),
            intent=Intent.GUILD_MESSAGES,
        )

    async def delete_message_state(self, message: FakeMessage) -> None:
        message.deleted = True
        if message.ephemeral:
            return
        data = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        await self.gateway.dispatch("MESSAGE_DELETE", data, intent=Intent.GUILD_MESSAGES)

    def _reaction_event(self, message: FakeMessage, user_id: int, key: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": emoji_payload(key),
            "burst": False,
            "type": 0,
        }
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        return data

    async def add_reaction_state(self, message: FakeMessage, user_id: int, key: str) -> None:
        users = message.reactions.setdefault(key, [])
        if user_id in users:
            return
        users.append(user_id)
        data = self._reaction_event(message, user_id, key)
        data["message_author_id"] = str(message.author.id)
        data["burst_colors"] = []
        guild = self.guilds.get(message.guild_id or 0)
        if guild is not None and user_id in guild.members:
            data["member"] = guild.members[user_id].to_payload()
        await self.gateway.dispatch(
            "MESSAGE_REACTION_ADD", data, intent=Intent.GUILD_MESSAGE_REACTIONS
        )

    async def remove_reaction_state(self, message: FakeMessage, user_id: int, key: str) -> None:
        users = message.reactions.get(key, [])
        if user_id not in users:
            return
        users.remove(user_id)
        if not users:
            message.reactions.pop(key, None)
        await self.gateway.dispatch(
            "MESSAGE_REACTION_REMOVE",
            self._reaction_event(message, user_id, key),
            intent=Intent.GUILD_MESSAGE_REACTIONS,
        )
