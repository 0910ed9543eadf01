"""The fake REST API under `/api/v10`: users, commands, interactions, webhooks, messages.

Each handler answers what Discord answers, error codes included, and echoes the bot's own
writes back through the gateway. A middleware parses bodies (JSON or multipart), logs every
call, and applies injected faults before (or after) the handler runs.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .interactions import LOCALES, CallbackRecord, EditRecord, FileRecord, RejectedCall
from .spec import discord_errors
from .state import (
    FakeAttachment,
    FakeChannel,
    FakeCommand,
    FakeGuild,
    FakeMessage,
    MessageFlag,
    Perm,
    emoji_key,
    is_plausible_unicode_emoji,
    json_text,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .interactions import InteractionRecord
    from .server import FakeDiscord

API_PREFIX = "/api/v10"
MAX_CONTENT = 2000
MAX_FILES = 10
COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


class ApiError(Exception):
    """An error answer with Discord's JSON shape: `{"message", "code", "errors"?}`."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid_form(errors: dict[str, Any]) -> ApiError:
    return ApiError(400, 50035, "Invalid Form Body", errors)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer whose Content-Type is exactly `application/json` (discord.py checks ==)."""
    body = json_text(data).encode()
    return web.Response(
        body=body, status=status, headers={"Content-Type": "application/json", **(headers or {})}
    )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One REST call as the fake saw it."""

    at: float
    method: str
    path: str  # decoded, without the /api/v10 prefix
    query: dict[str, str]
    json: Any
    files: tuple[FileRecord, ...]
    status: int
    authorized: bool
    fault: bool  # answered by an injected fault (a 429 of the channel rate limit too)
    dropped: bool = False  # the connection was cut instead of answering (status: what it did)


@dataclass(slots=True)
class FaultRule:
    """Answer the next `remaining` calls matching method + path glob with `status`."""

    method: str
    path: str  # fnmatch glob on the decoded path without /api/v10, e.g. "/webhooks/*"
    status: int = 429
    remaining: int = 1
    retry_after: float = 0.05
    scope: str = "user"
    is_global: bool = False
    process: bool = False  # run the handler first (Discord did it, but the answer failed)
    drop: bool = False  # cut the TCP connection instead of answering with `status`
    hits: list[float] = field(default_factory=list)

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and self.method in ("*", method.upper())
            and fnmatch.fnmatchcase(path, self.path)
        )

    def response(self) -> web.Response:
        if self.status == 429:
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, math.ceil(self.retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
                "X-RateLimit-Bucket": "fakebucket" + str(abs(hash(self.path)) % 10**8),
                "X-RateLimit-Scope": "global" if self.is_global else self.scope,
            }
            if self.is_global:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": self.retry_after,
                "global": self.is_global,
                "code": 0,
            }
            return json_response(body, 429, headers)
        return json_response({"message": f"{self.status}: injected fault", "code": 0}, self.status)


@dataclass(frozen=True, slots=True)
class Body:
    json: Any  # the JSON body, or the `payload_json` part of a multipart one
    files: tuple[FileRecord, ...]
    media_type: str | None = None  # None when the request had no body


BODY_KEY = web.RequestKey("fake_discord_body", Body)


class RestApi:
    """Registers the REST routes on an aiohttp app and implements them against the fake."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    # -- plumbing --------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        r = app.router
        p = API_PREFIX
        h = self
        routes: list[tuple[str, str, Callable[..., Awaitable[web.StreamResponse]]]] = [
            ("GET", "/users/@me", h.get_me),
            ("DELETE", "/users/@me/guilds/{guild_id}", h.leave_guild),
            ("GET", "/users/{user_id}", h.get_user),
            ("GET", "/oauth2/applications/@me", h.get_application),
            ("GET", "/applications/@me", h.get_application),
            ("GET", "/gateway", h.get_gateway),
            ("GET", "/gateway/bot", h.get_gateway_bot),
            ("GET", "/applications/{app_id}/commands", h.list_commands),
            ("PUT", "/applications/{app_id}/commands", h.overwrite_commands),
            ("POST", "/applications/{app_id}/commands", h.create_command),
            ("GET", "/applications/{app_id}/commands/{command_id}", h.get_command),
            ("PATCH", "/applications/{app_id}/commands/{command_id}", h.edit_command),
            ("DELETE", "/applications/{app_id}/commands/{command_id}", h.delete_command),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", h.list_commands),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", h.overwrite_commands),
            ("POST", "/applications/{app_id}/guilds/{guild_id}/commands", h.create_command),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands/permissions", h.list_command_permissions),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}/permissions", h.get_command_permissions),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}", h.get_command),
            ("PATCH", "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}", h.edit_command),
            ("DELETE", "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}", h.delete_command),
            ("POST", "/interactions/{interaction_id}/{token}/callback", h.interaction_callback),
            ("POST", "/webhooks/{app_id}/{token}", h.create_followup),
            ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", h.get_webhook_message),
            ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", h.edit_webhook_message),
            ("DELETE", "/webhooks/{app_id}/{token}/messages/{message_id}", h.delete_webhook_message),
            ("GET", "/channels/{channel_id}", h.get_channel),
            ("POST", "/channels/{channel_id}/typing", h.typing),
            ("GET", "/channels/{channel_id}/messages", h.list_messages),
            ("POST", "/channels/{channel_id}/messages", h.create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", h.get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", h.edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", h.delete_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions", h.clear_reactions),
            ("GET", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", h.list_reactions),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", h.add_reaction),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", h.remove_own_reaction),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}", h.remove_reaction),
            ("GET", "/guilds/{guild_id}", h.get_guild),
            ("GET", "/guilds/{guild_id}/channels", h.get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", h.get_guild_roles),
            ("GET", "/guilds/{guild_id}/members/{user_id}", h.get_member),
        ]  # fmt: skip
        for method, path, handler in routes:
            r.add_route(method, p + path, handler)
        r.add_route("*", p + "/{tail:.*}", h.not_found)
        r.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", h.download_attachment)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Parse, authenticate, inject faults, log; turn ApiError into Discord's JSON."""
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        fake = self.fake
        at = fake.now()
        path = request.path[len(API_PREFIX) :]
        authorized = request.headers.get("Authorization") == f"Bot {fake.token}"
        body = Body(None, ())
        fault_hit = dropped = False
        status = 0
        try:
            body = await self._parse(request)
            request[BODY_KEY] = body
            self._hold_to_spec(request.method, path, body)
            # Interaction callbacks and webhook calls are authenticated by their token.
            needs_auth = not path.startswith(("/interactions/", "/webhooks/"))
            if needs_auth and not authorized:
                raise ApiError(401, 0, "401: Unauthorized")
            rule = next((f for f in fake.faults if f.matches(request.method, path)), None)
            if rule is not None:
                rule.remaining -= 1
                rule.hits.append(at)
                fault_hit = True
                dropped = rule.drop
                processed: web.StreamResponse | None = None
                if rule.process:
                    try:
                        processed = await self._limited(request, path, handler)
                    except ApiError as exc:
                        processed = json_response(exc.body(), exc.status)
                if dropped:
                    # Never written: the connection is cut below, the client gets no answer.
                    status = 0 if processed is None else processed.status
                    response: web.StreamResponse = processed or web.Response(status=503)
                else:
                    response = rule.response()
            else:
                response = await self._limited(request, path, handler)
                fault_hit = response.status == 429
        except ApiError as exc:
            response = json_response(exc.body(), exc.status)
        fake.requests.append(
            RequestRecord(
                at=at,
                method=request.method,
                path=path,
                query=dict(request.query),
                json=body.json,
                files=body.files,
                status=status if dropped else response.status,
                authorized=authorized,
                fault=fault_hit,
                dropped=dropped,
            )
        )
        fake.notify()
        if dropped and request.transport is not None:
            request.transport.close()
        return response

    async def _limited(
        self,
        request: web.Request,
        path: str,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Run `handler` under the channel rate limit when it is on; its headers go on the answer."""
        limit = self.fake.channel_rate_limit
        channel_id = None if limit is None else limit.channel_of(request.method, path)
        if limit is None or channel_id is None:
            return await handler(request)
        decision = limit.take(channel_id, self.fake.now())
        if not decision.allowed:
            return json_response(decision.body(), 429, decision.headers)
        response = await handler(request)
        response.headers.update(decision.headers)
        return response

    def _hold_to_spec(self, method: str, path: str, body: Body) -> None:
        """Refuse a call that Discord's OpenAPI description does not allow, as Discord would
        (404 or 405 for an endpoint it does not have, 400 50035 for a body), and keep the
        violation: the fake fails the test at its end unless the test took them."""
        spec = self.fake.spec
        if spec is None:
            return
        violations = spec.check(method, path, body.media_type, body.json)
        if not violations:
            return
        self.fake.spec_violations.extend(violations)
        first = violations[0]
        if first.status == 404:
            raise ApiError(404, 0, "404: Not Found")
        if first.status == 405:
            raise ApiError(405, 0, "405: Method Not Allowed")
        raise invalid_form(discord_errors(violations))

    async def _parse(self, request: web.Request) -> Body:
        if request.content_type == "application/json":
            raw = await request.read()
            try:
                return Body(
                    json.loads(raw) if raw else None, (), request.content_type if raw else None
                )
            except ValueError as exc:
                raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc
        if request.content_type == "multipart/form-data":
            payload: Any = None
            files: list[tuple[int, FileRecord]] = []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                    continue
                match = re.fullmatch(r"files\[(\d+)\]", part.name or "")
                if match is None:
                    raise invalid_form({"files": f"unexpected form field {part.name!r}"})
                data = bytes(await part.read())
                if len(data) > self.fake.max_file_size:
                    raise ApiError(413, 40005, "Request entity too large")
                content_type = part.headers.get("Content-Type")
                files.append(
                    (int(match.group(1)), FileRecord(part.filename or "file", data, content_type))
                )
            if len(files) > MAX_FILES:
                raise invalid_form({"files": f"at most {MAX_FILES} files per message"})
            ordered = tuple(f for _, f in sorted(files, key=lambda x: x[0]))
            return Body(payload, ordered, request.content_type)
        raw = await request.read()
        return Body(None, (), request.content_type if raw else None)

    @staticmethod
    def body(request: web.Request) -> Body:
        return request[BODY_KEY]

    def _json_object(self, request: web.Request) -> dict[str, Any]:
        data = self.body(request).json
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise invalid_form({"_errors": "expected an object"})
        return data

    async def not_found(self, request: web.Request) -> web.Response:
        raise ApiError(404, 0, "404: Not Found")

    # -- users, application, gateway -------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.Response:
        bot = self.fake.bot_user
        return json_response({**bot.to_payload(), "verified": True, "mfa_enabled": False})

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.fake.users.get(_int(request.match_info["user_id"]))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return json_response(user.to_payload())

    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(self.fake.application.to_payload())

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        used = self.fake.gateway.identify_count
        return json_response(
            {
                "url": self.fake.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": max(0, 1000 - used),
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def leave_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request.match_info["guild_id"])
        await self.fake.remove_bot_from_guild(guild)
        return web.Response(status=204)

    # -- application commands --------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> int | None:
        app_id = _int(request.match_info["app_id"])
        if app_id != self.fake.application.id:
            raise ApiError(403, 50001, "Missing Access")
        raw = request.match_info.get("guild_id")
        if raw is None:
            return None
        guild = self.fake.guilds.get(_int(raw))
        if guild is None or self.fake.bot_user.id not in guild.members:
            raise ApiError(403, 50001, "Missing Access")
        return guild.id

    async def list_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        return json_response([c.to_payload() for c in self.fake.commands.get(scope, [])])

    async def overwrite_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        payloads = self.body(request).json
        if not isinstance(payloads, list):
            raise invalid_form({"_errors": "expected an array of commands"})
        if len(payloads) > 100:
            raise invalid_form({"_errors": "at most 100 commands"})
        errors = {str(i): e for i, p in enumerate(payloads) if (e := validate_command(p))}
        seen: set[tuple[str, int]] = set()
        for i, p in enumerate(payloads):
            key = (str(p.get("name")), int(p.get("type", 1)))
            if key in seen:
                errors[str(i)] = {"name": "APPLICATION_COMMANDS_DUPLICATE_NAME"}
            seen.add(key)
        if errors:
            raise invalid_form(errors)
        commands = self.fake.replace_commands(scope, payloads)
        return json_response([c.to_payload() for c in commands])

    async def create_command(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        payload = self._json_object(request)
        if errors := validate_command(payload):
            raise invalid_form(errors)
        command, created = self.fake.upsert_command(scope, payload)
        return json_response(command.to_payload(), 201 if created else 200)

    def _command(self, request: web.Request) -> tuple[int | None, FakeCommand]:
        scope = self._command_scope(request)
        wanted = _int(request.match_info["command_id"])
        for command in self.fake.commands.get(scope, []):
            if command.id == wanted:
                return scope, command
        raise ApiError(404, 10063, "Unknown application command")

    async def get_command(self, request: web.Request) -> web.Response:
        _, command = self._command(request)
        return json_response(command.to_payload())

    async def edit_command(self, request: web.Request) -> web.Response:
        _, command = self._command(request)
        payload = {**command.payload, **self._json_object(request)}
        if errors := validate_command(payload):
            raise invalid_form(errors)
        command.payload = payload
        command.version = self.fake.snowflakes.next()
        return json_response(command.to_payload())

    async def delete_command(self, request: web.Request) -> web.Response:
        scope, command = self._command(request)
        self.fake.commands[scope] = [c for c in self.fake.commands[scope] if c is not command]
        return web.Response(status=204)

    async def list_command_permissions(self, request: web.Request) -> web.Response:
        guild_id = self._command_scope(request)
        assert guild_id is not None
        targets = self.fake.command_permissions.get(guild_id, {})
        return json_response(
            [self.fake.command_permissions_payload(guild_id, target) for target in targets]
        )

    async def get_command_permissions(self, request: web.Request) -> web.Response:
        guild_id = self._command_scope(request)
        assert guild_id is not None
        target = _int(request.match_info["command_id"])
        if target not in self.fake.command_permissions.get(guild_id, {}):
            # Discord: none set for this command (it follows the defaults).
            raise ApiError(404, 10066, "Unknown application command permissions")
        return json_response(self.fake.command_permissions_payload(guild_id, target))

    # -- interactions ----------------------------------------------------------------------

    def _reject(self, record: InteractionRecord, request: web.Request, error: ApiError) -> ApiError:
        record.rejected.append(
            RejectedCall(
                self.fake.now(),
                request.method,
                request.path,
                error.status,
                error.code,
                error.message,
            )
        )
        return error

    async def interaction_callback(self, request: web.Request) -> web.StreamResponse:
        fake = self.fake
        record = fake.interactions.get(_int(request.match_info["interaction_id"]))
        if record is None or record.token != request.match_info["token"]:
            raise ApiError(404, 10062, "Unknown interaction")
        now = fake.now()
        if record.callbacks:
            raise self._reject(
                record, request, ApiError(400, 40060, "Interaction has already been acknowledged.")
            )
        if now - record.delivered_at > fake.interaction_deadline:
            # Discord forgets an interaction nobody answered within 3 s.
            raise self._reject(record, request, ApiError(404, 10062, "Unknown interaction"))
        body = self.body(request)
        payload = self._json_object(request)
        kind = int(payload.get("type", 0))
        data = payload.get("data")
        if kind not in (1, 4, 5, 6, 7, 8, 9, 10, 12):
            raise invalid_form({"type": f"unknown interaction callback type {kind}"})
        # Updating the message is for a component's interaction, or a form opened from one.
        if kind in (6, 7) and (record.type not in (3, 5) or record.message_id is None):
            raise self._reject(
                record, request, ApiError(400, 40043, "Interaction callback type is invalid here.")
            )
        message: FakeMessage | None = None
        created = False
        if kind in (4, 5):
            flags = int((data or {}).get("flags") or 0)
            ephemeral = bool(flags & MessageFlag.EPHEMERAL)
            message = fake.new_interaction_message(record, ephemeral=ephemeral)
            if kind == 5:
                message.flags |= MessageFlag.LOADING
                message.versions.append(message.to_payload(bot_id=fake.bot_user.id))
            else:
                self.apply_write(message, data or {}, body.files, creating=True, interaction=True)
            created = True
        elif kind in (6, 7):
            # A component interaction: `@original` is the message the component is on.
            message = fake.messages.get(record.message_id or 0)
            if message is None or message.deleted:
                raise self._reject(record, request, ApiError(404, 10008, "Unknown Message"))
            if kind == 7:
                self.apply_write(message, data or {}, body.files, creating=False, interaction=True)
                record.edits.append(
                    _edit_record(now, message, data or {}, body.files, via="callback")
                )
        if message is not None:
            record.original_message_id = message.id
        record.callbacks.append(CallbackRecord(at=now, type=kind, data=data, files=body.files))
        if message is not None and created:
            fake.store_message(message)
            await fake.echo_message_create(message)
        elif message is not None and kind == 7:
            await fake.echo_message_update(message)
        fake.notify()
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        interaction: dict[str, Any] = {"id": str(record.id), "type": record.type}
        response: dict[str, Any] = {"interaction": interaction}
        if message is not None and kind != 6:
            interaction.update(
                response_message_id=str(message.id),
                response_message_loading=kind == 5,
                response_message_ephemeral=message.ephemeral,
            )
            response["resource"] = {
                "type": kind,
                "message": message.to_payload(bot_id=fake.bot_user.id),
            }
        return json_response(response)

    def _webhook_record(self, request: web.Request) -> InteractionRecord:
        fake = self.fake
        record = fake.interactions_by_token.get(request.match_info["token"])
        if record is None or _int(request.match_info["app_id"]) != fake.application.id:
            raise ApiError(404, 10015, "Unknown Webhook")
        if fake.now() - record.token_born_at > fake.token_lifetime:
            raise self._reject(record, request, ApiError(401, 50027, "Invalid Webhook Token"))
        if not record.callbacks:
            raise self._reject(record, request, ApiError(404, 10015, "Unknown Webhook"))
        return record

    def _webhook_message(self, request: web.Request, record: InteractionRecord) -> FakeMessage:
        raw = request.match_info["message_id"]
        message_id = record.original_message_id if raw == "@original" else _int(raw)
        message = self.fake.messages.get(message_id or 0)
        ours = message_id == record.original_message_id or message_id in record.followup_ids
        if message is None or message.deleted or not ours:
            raise self._reject(record, request, ApiError(404, 10008, "Unknown Message"))
        return message

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook_record(request)
        message = self._webhook_message(request, record)
        return json_response(self.fake.message_payload(message))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        record = self._webhook_record(request)
        message = self._webhook_message(request, record)
        body = self.body(request)
        payload = self._json_object(request)
        self.apply_write(message, payload, body.files, creating=False, interaction=True)
        record.edits.append(_edit_record(fake.now(), message, payload, body.files))
        await fake.echo_message_update(message)
        fake.notify()
        return json_response(fake.message_payload(message))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook_record(request)
        message = self._webhook_message(request, record)
        await self.fake.delete_message_state(message)
        record.deleted_ids.append(message.id)
        self.fake.notify()
        return web.Response(status=204)

    async def create_followup(self, request: web.Request) -> web.Response:
        fake = self.fake
        record = self._webhook_record(request)
        body = self.body(request)
        payload = self._json_object(request)
        original = record.original_message
        if original is not None and original.loading and not original.deleted:
            # After a defer, Discord turns the first followup into the original response.
            self.apply_write(original, payload, body.files, creating=False, interaction=True)
            record.edits.append(_edit_record(fake.now(), original, payload, body.files))
            await fake.echo_message_update(original)
            fake.notify()
            return json_response(fake.message_payload(original))
        flags = int(payload.get("flags") or 0)
        message = fake.new_interaction_message(
            record, ephemeral=bool(flags & MessageFlag.EPHEMERAL)
        )
        self.apply_write(message, payload, body.files, creating=True, interaction=True)
        fake.store_message(message)
        record.followup_ids.append(message.id)
        await fake.echo_message_create(message)
        fake.notify()
        if request.query.get("wait") in ("1", "true", "True"):
            return json_response(fake.message_payload(message))
        return web.Response(status=204)

    # -- channels and messages -------------------------------------------------------------

    def _guild(self, raw: str) -> FakeGuild:
        guild = self.fake.guilds.get(_int(raw))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        if self.fake.bot_user.id not in guild.members:
            raise ApiError(403, 50001, "Missing Access")
        return guild

    def _channel(self, raw: str, need: int = 0) -> tuple[FakeGuild, FakeChannel, int]:
        """The channel, its guild and the bot's permissions there, or Discord's error."""
        cid = _int(raw)
        guild = self.fake.guild_of_channel(cid)
        if guild is None:
            raise ApiError(404, 10003, "Unknown Channel")
        bot_id = self.fake.bot_user.id
        if bot_id not in guild.members:
            raise ApiError(403, 50001, "Missing Access")
        perms = guild.channel_permissions(bot_id, cid)
        if not perms & Perm.VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if need & ~perms:
            raise ApiError(403, 50013, "Missing Permissions")
        return guild, guild.channels[cid], perms

    def _message(self, channel: FakeChannel, raw: str) -> FakeMessage:
        message = self.fake.messages.get(_int(raw))
        if (
            message is None
            or message.deleted
            or message.channel_id != channel.id
            or message.ephemeral
        ):
            raise ApiError(404, 10008, "Unknown Message")
        return message

    async def get_channel(self, request: web.Request) -> web.Response:
        _, channel, _ = self._channel(request.match_info["channel_id"])
        return json_response(channel.to_payload())

    async def typing(self, request: web.Request) -> web.Response:
        self._channel(request.match_info["channel_id"], Perm.SEND_MESSAGES)
        return web.Response(status=204)

    async def list_messages(self, request: web.Request) -> web.Response:
        _, channel, _ = self._channel(request.match_info["channel_id"], Perm.READ_MESSAGE_HISTORY)
        limit = min(100, int(request.query.get("limit", 50)))
        before = int(request.query.get("before", 0)) or None
        after = int(request.query.get("after", 0)) or None
        found = [
            m
            for m in self.fake.channel_messages(channel.id)
            if (before is None or m.id < before) and (after is None or m.id > after)
        ]
        found.sort(key=lambda m: m.id, reverse=True)
        return json_response([self.fake.message_payload(m) for m in found[:limit]])

    async def get_message(self, request: web.Request) -> web.Response:
        _, channel, _ = self._channel(request.match_info["channel_id"], Perm.READ_MESSAGE_HISTORY)
        return json_response(
            self.fake.message_payload(self._message(channel, request.match_info["message_id"]))
        )

    async def create_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        guild, channel, perms = self._channel(request.match_info["channel_id"], Perm.SEND_MESSAGES)
        body = self.body(request)
        payload = self._json_object(request)
        if body.files and not perms & Perm.ATTACH_FILES:
            raise ApiError(403, 50013, "Missing Permissions")
        # Discord: with `enforce_nonce`, a repeated nonce returns the message it first created.
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce"):
            earlier = fake.messages.get(fake.nonces.get((channel.id, str(nonce)), 0))
            if earlier is not None and not earlier.deleted:
                return json_response(fake.message_payload(earlier))
        reference = payload.get("message_reference")
        message = FakeMessage(
            id=fake.snowflakes.next(),
            channel_id=channel.id,
            guild_id=guild.id,
            author=fake.bot_user,
        )
        if reference:
            ref_id = _int(str(reference.get("message_id", "0")))
            target = fake.messages.get(ref_id)
            exists = target is not None and not target.deleted and target.channel_id == channel.id
            if not exists and reference.get("fail_if_not_exists", True):
                raise invalid_form(
                    {"message_reference": {"_errors": [{"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}]}}
                )  # fmt: skip
            if not perms & Perm.READ_MESSAGE_HISTORY:
                raise ApiError(403, 50013, "Missing Permissions")
            if exists:
                message.type = 19
                message.message_reference = {
                    "type": 0,
                    "message_id": str(ref_id),
                    "channel_id": str(channel.id),
                    "guild_id": str(guild.id),
                    "fail_if_not_exists": bool(reference.get("fail_if_not_exists", True)),
                }
        self.apply_write(
            message, payload, body.files, creating=True, interaction=False, perms=perms
        )
        fake.store_message(message)
        if nonce is not None and payload.get("enforce_nonce"):
            fake.nonces[(channel.id, str(nonce))] = message.id
        await fake.echo_message_create(message)
        fake.notify()
        return json_response(fake.message_payload(message))

    async def edit_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        _, channel, perms = self._channel(request.match_info["channel_id"])
        message = self._message(channel, request.match_info["message_id"])
        if message.author.id != fake.bot_user.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        body = self.body(request)
        payload = self._json_object(request)
        self.apply_write(
            message, payload, body.files, creating=False, interaction=False, perms=perms
        )
        record = fake.interaction_of_message(message)
        if record is not None:
            record.edits.append(
                _edit_record(fake.now(), message, payload, body.files, via="channel")
            )
        await fake.echo_message_update(message)
        fake.notify()
        return json_response(fake.message_payload(message))

    async def delete_message(self, request: web.Request) -> web.Response:
        _, channel, perms = self._channel(request.match_info["channel_id"])
        message = self._message(channel, request.match_info["message_id"])
        if message.author.id != self.fake.bot_user.id and not perms & Perm.MANAGE_MESSAGES:
            raise ApiError(403, 50013, "Missing Permissions")
        await self.fake.delete_message_state(message)
        self.fake.notify()
        return web.Response(status=204)

    # -- reactions -------------------------------------------------------------------------

    def _emoji(self, request: web.Request) -> str:
        key = emoji_key(request.match_info["emoji"])
        if not is_plausible_unicode_emoji(key):
            raise ApiError(400, 10014, "Unknown Emoji")
        return key

    async def add_reaction(self, request: web.Request) -> web.Response:
        fake = self.fake
        _, channel, perms = self._channel(
            request.match_info["channel_id"], Perm.READ_MESSAGE_HISTORY
        )
        message = self._message(channel, request.match_info["message_id"])
        key = self._emoji(request)
        users = message.reactions.get(key, [])
        if not users and not perms & Perm.ADD_REACTIONS:
            raise ApiError(403, 50013, "Missing Permissions")
        if not users and len(message.reactions) >= 20:
            raise ApiError(403, 30010, "Maximum number of reactions reached (20)")
        if fake.bot_user.id not in users:
            await fake.add_reaction_state(message, fake.bot_user.id, key)
        fake.notify()
        return web.Response(status=204)

    async def remove_own_reaction(self, request: web.Request) -> web.Response:
        _, channel, _ = self._channel(request.match_info["channel_id"])
        message = self._message(channel, request.match_info["message_id"])
        await self.fake.remove_reaction_state(message, self.fake.bot_user.id, self._emoji(request))
        self.fake.notify()
        return web.Response(status=204)

    async def remove_reaction(self, request: web.Request) -> web.Response:
        _, channel, _ = self._channel(request.match_info["channel_id"], Perm.MANAGE_MESSAGES)
        message = self._message(channel, request.match_info["message_id"])
        user_id = _int(request.match_info["user_id"])
        await self.fake.remove_reaction_state(message, user_id, self._emoji(request))
        self.fake.notify()
        return web.Response(status=204)

    async def list_reactions(self, request: web.Request) -> web.Response:
        _, channel, _ = self._channel(request.match_info["channel_id"], Perm.READ_MESSAGE_HISTORY)
        message = self._message(channel, request.match_info["message_id"])
        ids = message.reactions.get(self._emoji(request), [])
        return json_response([self.fake.users[i].to_payload() for i in ids if i in self.fake.users])

    async def clear_reactions(self, request: web.Request) -> web.Response:
        _, channel, _ = self._channel(request.match_info["channel_id"], Perm.MANAGE_MESSAGES)
        message = self._message(channel, request.match_info["message_id"])
        message.reactions.clear()
        self.fake.notify()
        return web.Response(status=204)

    # -- guilds ----------------------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request.match_info["guild_id"])
        data = guild.to_payload(bot_id=self.fake.bot_user.id, all_members=False)
        for key in ("members", "channels", "threads", "presences", "voice_states"):
            data.pop(key, None)
        return json_response(data)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request.match_info["guild_id"])
        return json_response([c.to_payload() for c in guild.channels.values()])

    async def get_guild_roles(self, request: web.Request) -> web.Response:
        guild = self._guild(request.match_info["guild_id"])
        return json_response([r.to_payload() for r in guild.roles.values()])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request.match_info["guild_id"])
        member = guild.members.get(_int(request.match_info["user_id"]))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return json_response(member.to_payload())

    async def download_attachment(self, request: web.Request) -> web.Response:
        attachment = self.fake.attachments.get(_int(request.match_info["attachment_id"]))
        if attachment is None:
            return web.Response(status=404, text="Not Found")
        self.fake.downloads.append(attachment.id)
        return web.Response(
            body=attachment.data,
            headers={"Content-Type": attachment.media_type() or "application/octet-stream"},
        )

    # -- writing a message -----------------------------------------------------------------

    def apply_write(
        self,
        message: FakeMessage,
        payload: dict[str, Any],
        files: tuple[FileRecord, ...],
        *,
        creating: bool,
        interaction: bool,
        perms: int = Perm.ALL,
    ) -> None:
        """Validate a create/edit body like Discord does, then apply it to `message`."""
        fake = self.fake
        content = payload.get("content", message.content if not creating else "")
        content = "" if content is None else str(content)
        if len(content) > MAX_CONTENT:
            raise invalid_form({"content": f"Must be {MAX_CONTENT} or fewer in length."})
        embeds = payload.get("embeds", message.embeds if not creating else [])
        embeds = [] if embeds is None else list(embeds)
        if errors := validate_embeds(embeds):
            raise invalid_form({"embeds": errors})
        if not interaction and not perms & Perm.EMBED_LINKS:
            embeds = []  # Without Embed Links Discord accepts the message but drops embeds.
        if files and not interaction and not perms & Perm.ATTACH_FILES:
            raise ApiError(403, 50013, "Missing Permissions")
        attachments = self._attachments(message, payload, files, creating=creating)
        if len(attachments) > MAX_FILES:
            raise invalid_form({"attachments": f"at most {MAX_FILES} attachments"})
        components = payload.get("components", message.components)
        if components and (errors := validate_components(list(components))):
            raise invalid_form({"components": errors})
        if not (content or embeds or attachments or components or payload.get("sticker_ids")):
            raise ApiError(400, 50006, "Cannot send an empty message")
        message.content = content
        message.embeds = embeds
        message.attachments = attachments
        message.components = list(components or [])
        if "allowed_mentions" in payload or creating:
            message.allowed_mentions = payload.get("allowed_mentions")
        if "flags" in payload and payload["flags"] is not None:
            # Only these bits are caller-settable; EPHEMERAL is fixed at creation.
            settable = (1 << 2) | (1 << 12) | (1 << 15)  # SUPPRESS_EMBEDS, SILENT, IS_COMPONENTS_V2
            message.flags = (message.flags & ~settable) | (int(payload["flags"]) & settable)
        if not creating:
            message.edited_at = time.time()
            message.flags &= ~MessageFlag.LOADING
        message.versions.append(message.to_payload(bot_id=fake.bot_user.id))

    def _attachments(
        self,
        message: FakeMessage,
        payload: dict[str, Any],
        files: tuple[FileRecord, ...],
        *,
        creating: bool,
    ) -> list[FakeAttachment]:
        listed = payload.get("attachments")
        meta_by_index: dict[int, dict[str, Any]] = {}
        keep: list[FakeAttachment] = []
        existing = {a.id: a for a in message.attachments}
        if listed is None:
            keep = [] if creating else list(message.attachments)
        else:
            for entry in listed:
                ident = int(entry.get("id"))
                if ident in existing:
                    keep.append(existing[ident])
                elif ident < len(files):
                    meta_by_index[ident] = entry
                else:
                    raise invalid_form({"attachments": f"unknown attachment id {ident}"})
        new: list[FakeAttachment] = []
        for index, record in enumerate(files):
            meta = meta_by_index.get(index, {})
            filename = str(meta.get("filename") or record.filename)
            attachment = self.fake.store_attachment(
                message.channel_id,
                filename,
                record.data,
                content_type=record.content_type,
                description=meta.get("description"),
            )
            new.append(attachment)
        return keep + new


def _edit_record(
    at: float,
    message: FakeMessage,
    payload: dict[str, Any],
    files: tuple[FileRecord, ...],
    *,
    via: str = "webhook",
) -> EditRecord:
    return EditRecord(
        at=at,
        message_id=message.id,
        payload=payload,
        files=files,
        content=message.content,
        embeds=tuple(message.embeds),
        attachments=tuple(
            FileRecord(a.filename, a.data, a.content_type, a.description)
            for a in message.attachments
        ),
        components=tuple(message.components),
        via=via,
    )


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, 50035, "Invalid Form Body", {"id": "Value is not snowflake."}) from None


def validate_embeds(embeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Discord's embed rules that its OpenAPI spec does not state (the spec, checked before
    any handler runs, holds the counts and lengths): a field's name and value are not empty,
    and all the text of a message's embeds is at most 6000 characters. Returns the errors by
    position (empty when valid)."""
    errors: dict[str, Any] = {}
    total = 0
    for i, embed in enumerate(embeds):
        problems: dict[str, str] = {}
        total += len(embed.get("title") or "") + len(embed.get("description") or "")
        for j, fld in enumerate(embed.get("fields") or []):
            name, value = str(fld.get("name", "")), str(fld.get("value", ""))
            total += len(name) + len(value)
            if not name:
                problems[f"fields.{j}.name"] = "Must be between 1 and 256 in length."
            if not value:
                problems[f"fields.{j}.value"] = "Must be between 1 and 1024 in length."
        total += len(str((embed.get("footer") or {}).get("text", "")))
        total += len(str((embed.get("author") or {}).get("name", "")))
        if problems:
            errors[str(i)] = problems
    if total > 6000:
        errors["_errors"] = "Embed size exceeds maximum size of 6000"
    return errors


def validate_components(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Discord's rules on classic components that its OpenAPI spec does not state (the spec
    holds the row sizes, styles and lengths): at most 5 action rows; a link button has a
    `url` and no `custom_id`; a select fills its row alone; every other component has a
    `custom_id`, unique in the message. Returns the errors by position (empty when valid);
    Components V2 layouts pass unchecked."""
    errors: dict[str, Any] = {}
    if any(int(row.get("type", 0)) != 1 for row in rows):
        return errors  # Components V2 (sections, containers...): not modelled
    if len(rows) > 5:
        errors["_errors"] = "at most 5 action rows"
    seen: set[str] = set()
    for i, row in enumerate(rows):
        children = list(row.get("components") or [])
        for j, child in enumerate(children):
            at = f"{i}.components.{j}"
            custom_id = child.get("custom_id")
            if int(child.get("type", 0)) == 2:
                style = int(child.get("style", 0))
                if style == 5:  # a link: a url, and no custom_id to check
                    if not child.get("url") or custom_id is not None:
                        errors[at] = "a link button has a url and no custom_id"
                    continue
                if style == 6:
                    continue
            elif len(children) > 1:
                errors[at] = "a select fills its action row alone"
            if not isinstance(custom_id, str):
                errors[f"{at}.custom_id"] = "This field is required"
            elif custom_id in seen:
                errors[f"{at}.custom_id"] = "COMPONENT_CUSTOM_ID_DUPLICATED"
            else:
                seen.add(custom_id)
    return errors


def validate_command(payload: Any) -> dict[str, Any]:
    """Discord's checks on one command payload; returns errors (empty when valid)."""
    if not isinstance(payload, dict):
        return {"_errors": "expected an object"}
    errors: dict[str, Any] = {}
    kind = int(payload.get("type", 1))
    name = str(payload.get("name", ""))
    if kind == 1 and (not COMMAND_NAME.match(name) or name != name.lower()):
        errors["name"] = "APPLICATION_COMMAND_INVALID_NAME"
    description = str(payload.get("description", ""))
    if kind == 1 and not 1 <= len(description) <= 100:
        errors["description"] = "Must be between 1 and 100 in length."
    for key in ("name_localizations", "description_localizations"):
        for locale in payload.get(key) or {}:
            if locale not in LOCALES:
                errors[f"{key}.{locale}"] = "Invalid locale"
    errors.update(_validate_options(payload.get("options") or [], "options"))
    return errors


def _validate_options(options: list[dict[str, Any]], where: str) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    if len(options) > 25:
        errors[where] = "at most 25 options"
    seen_optional = False
    for i, option in enumerate(options):
        at = f"{where}.{i}"
        name = str(option.get("name", ""))
        if not COMMAND_NAME.match(name) or name != name.lower():
            errors[f"{at}.name"] = "APPLICATION_COMMAND_INVALID_NAME"
        if not 1 <= len(str(option.get("description", ""))) <= 100:
            errors[f"{at}.description"] = "Must be between 1 and 100 in length."
        if len(option.get("choices") or []) > 25:
            errors[f"{at}.choices"] = "at most 25 choices"
        if option.get("type") in (1, 2):
            errors.update(_validate_options(option.get("options") or [], f"{at}.options"))
            continue
        if option.get("required"):
            if seen_optional:
                errors[f"{at}.required"] = "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID"
        else:
            seen_optional = True
    return errors
