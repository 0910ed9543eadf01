"""The fake gateway: HELLO, IDENTIFY/READY, heartbeats, RESUME with replay, intents.

Every dispatched event gets a sequence number in its session and is kept, so a client that
comes back with RESUME after a dropped connection receives exactly what it missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .state import Intent, json_text

if TYPE_CHECKING:
    from .server import FakeDiscord

_log = logging.getLogger(__name__)

EventData = dict[str, Any] | Callable[["GatewaySession"], dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class GatewayFrame:
    """One gateway message, in either direction, for assertions."""

    at: float
    direction: str  # "send" (fake -> client) or "recv" (client -> fake)
    op: int | None
    t: str | None
    s: int | None
    d: Any
    session_id: str | None


@dataclass(slots=True)
class _Logged:
    seq: int
    event: str
    data: dict[str, Any]


@dataclass(slots=True)
class Connection:
    """One WebSocket connection; a session outlives its connections."""

    ws: web.WebSocketResponse
    request: web.Request
    compress: bool
    path: str
    compressor: Any = None
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: GatewaySession | None = None
    heartbeats: int = 0
    dropped: bool = False

    async def send(self, payload: dict[str, Any]) -> None:
        """Send one payload, zlib-stream compressed when the client asked for it."""
        text = json_text(payload)
        # One lock per connection: the zlib stream state and the frame order must agree.
        async with self.send_lock:
            if self.ws.closed:
                return
            try:
                if self.compress:
                    if self.compressor is None:
                        self.compressor = zlib.compressobj()
                    data = self.compressor.compress(text.encode())
                    data += self.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                _log.debug("gateway send on a closing connection dropped")


@dataclass(slots=True)
class GatewaySession:
    """A gateway session (IDENTIFY to invalidation), resumable across connections."""

    session_id: str
    intents: int
    shard: list[int] | None = None
    seq: int = 0
    log: list[_Logged] = field(default_factory=list)
    conn: Connection | None = None
    ended: bool = False
    resumes: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def wants(self, intent: int | None) -> bool:
        return intent is None or bool(self.intents & intent)

    async def emit(self, event: str, data: dict[str, Any], gateway: Gateway) -> None:
        """Number, keep and (when connected) send one DISPATCH. Caller holds `lock`."""
        self.seq += 1
        self.log.append(_Logged(self.seq, event, data))
        if self.conn is not None:
            await gateway.send(self.conn, {"op": 0, "t": event, "s": self.seq, "d": data})


class Gateway:
    """The WebSocket side of the fake; `FakeDiscord` owns one."""

    def __init__(self, fake: FakeDiscord, *, heartbeat_interval_ms: int) -> None:
        self.fake = fake
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: list[Connection] = []
        self.frames: list[GatewayFrame] = []
        self.identify_count = 0
        self.identified_at: list[float] = []  # fake.now() of each IDENTIFY, in order
        self.resume_count = 0
        self.presence_updates: list[dict[str, Any]] = []

    # -- sending ---------------------------------------------------------------------------

    async def send(self, conn: Connection, payload: dict[str, Any]) -> None:
        sid = conn.session.session_id if conn.session else None
        self.frames.append(
            GatewayFrame(
                self.fake.now(),
                "send",
                payload.get("op"),
                payload.get("t"),
                payload.get("s"),
                payload.get("d"),
                sid,
            )
        )
        await conn.send(payload)
        self.fake.notify()

    async def dispatch(self, event: str, data: EventData, *, intent: int | None = None) -> int:
        """Send an event to every live or resumable session that asked for `intent`.

        `data` may be a function of the session (returning None to skip it), for payloads
        that depend on the session's intents. Returns how many sessions got it.
        """
        delivered = 0
        for session in list(self.sessions.values()):
            if session.ended or not session.wants(intent):
                continue
            payload = data(session) if callable(data) else data
            if payload is None:
                continue
            async with session.lock:
                await session.emit(event, payload, self)
            delivered += 1
        return delivered

    # -- harness controls ------------------------------------------------------------------

    def live_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if not s.ended and s.conn is not None]

    async def drop(self, *, code: int = 4000, abort: bool = False) -> int:
        """Cut every live connection (sessions stay resumable). Returns how many were cut."""
        cut = 0
        for session in self.live_sessions():
            conn = session.conn
            assert conn is not None
            conn.dropped = True
            session.conn = None
            if abort:
                # No close frame at all, like a network failure.
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
            else:
                await conn.ws.close(code=code, message=b"fake discord: connection dropped")
            cut += 1
        self.fake.notify()
        return cut

    async def send_op(self, op: int, d: Any = None) -> None:
        """Send a raw opcode (7 RECONNECT, 9 INVALID_SESSION, ...) on every live connection."""
        for session in self.live_sessions():
            assert session.conn is not None
            await self.send(session.conn, {"op": op, "d": d})

    # -- the WebSocket handler -------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Serve one gateway connection until either side closes it."""
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        conn = Connection(
            ws=ws,
            request=request,
            compress=request.query.get("compress") == "zlib-stream",
            path=request.path,
        )
        self.connections.append(conn)
        await self.send(conn, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                if not await self._on_message(conn, payload):
                    break
        finally:
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                # A client that closes with 1000/1001 ends its session, as on Discord.
                if not conn.dropped and ws.close_code in (1000, 1001):
                    session.ended = True
            self.fake.notify()
        return ws

    async def _on_message(self, conn: Connection, payload: dict[str, Any]) -> bool:
        op = payload.get("op")
        d = payload.get("d")
        self.frames.append(
            GatewayFrame(
                self.fake.now(),
                "recv",
                op,
                None,
                None,
                _redact(d),
                conn.session.session_id if conn.session else None,
            )
        )
        self.fake.notify()
        if op == 1:
            conn.heartbeats += 1
            await self.send(conn, {"op": 11, "d": None})
            return True
        if op == 2:
            return await self._identify(conn, d or {})
        if op == 6:
            return await self._resume(conn, d or {})
        if conn.session is None:
            await conn.ws.close(code=4003, message=b"Not authenticated.")
            return False
        if op == 3:
            self.presence_updates.append(d or {})
            return True
        if op == 8:
            await self._request_members(conn, d or {})
            return True
        if op == 4:
            return True
        await conn.ws.close(code=4001, message=b"Unknown opcode.")
        return False

    async def _identify(self, conn: Connection, d: dict[str, Any]) -> bool:
        fake = self.fake
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return False
        if d.get("token") != fake.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return False
        intents = d.get("intents")
        if not isinstance(intents, int):
            await conn.ws.close(code=4013, message=b"Invalid intent(s).")
            return False
        if intents & Intent.PRIVILEGED & ~fake.application.privileged_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return False
        self.identify_count += 1
        self.identified_at.append(fake.now())
        session = GatewaySession(
            session_id=secrets.token_hex(16), intents=intents, shard=d.get("shard")
        )
        self.sessions[session.session_id] = session
        conn.session = session
        bot = fake.bot_user
        guilds = [g for g in fake.guilds.values() if bot.id in g.members]
        ready = {
            "v": 10,
            "user": {**bot.to_payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": fake.resume_gateway_url,
            "application": {"id": str(fake.application.id), "flags": fake.application.flags},
            "private_channels": [],
            "presences": [],
            "relationships": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth_session_id_hash": "",
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        async with session.lock:
            session.conn = conn
            await session.emit("READY", ready, self)
            for guild in guilds:
                payload = guild.to_payload(
                    bot_id=bot.id, all_members=bool(intents & Intent.GUILD_MEMBERS)
                )
                if intents & Intent.GUILDS:
                    await session.emit("GUILD_CREATE", payload, self)
        return True

    async def _resume(self, conn: Connection, d: dict[str, Any]) -> bool:
        session = self.sessions.get(str(d.get("session_id")))
        if session is None or session.ended or d.get("token") != self.fake.token:
            # Not resumable: Discord says "invalid session, do not resume".
            await self.send(conn, {"op": 9, "d": False})
            return True
        seq = d.get("seq") or 0
        old = session.conn
        async with session.lock:
            session.conn = conn
            conn.session = session
            for logged in session.log:
                if logged.seq > seq:
                    await self.send(
                        conn, {"op": 0, "t": logged.event, "s": logged.seq, "d": logged.data}
                    )
            session.resumes += 1
            self.resume_count += 1
            await session.emit("RESUMED", {}, self)
        if old is not None and old is not conn:
            old.dropped = True
            await old.ws.close(code=4000)
        return True

    async def _request_members(self, conn: Connection, d: dict[str, Any]) -> None:
        guild = self.fake.guilds.get(int(d.get("guild_id", 0)))
        session = conn.session
        assert session is not None
        if guild is None:
            return
        query = str(d.get("query") or "").lower()
        limit = int(d.get("limit") or 0) or len(guild.members)
        wanted = {int(u) for u in d.get("user_ids") or []}
        members = [
            m
            for m in guild.members.values()
            if (not wanted or m.id in wanted) and m.user.username.lower().startswith(query)
        ][:limit]
        chunk = {
            "guild_id": str(guild.id),
            "members": [m.to_payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if d.get("nonce") is not None:
            chunk["nonce"] = d["nonce"]
        async with session.lock:
            await session.emit("GUILD_MEMBERS_CHUNK", chunk, self)


def _redact(d: Any) -> Any:
    """Keep the bot token out of the frame log (tests print it on failure)."""
    if isinstance(d, dict) and "token" in d:
        return {**d, "token": "<redacted>"}
    return d
