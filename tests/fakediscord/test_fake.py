"""The fake Discord, proven with a small real `commands.Bot` over real sockets."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from typing import Literal

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakediscord import FakeDiscord, InteractionRecord, Perm, WireValue, run_client
from tests.fakediscord.plugin import fake_discord  # noqa: F401  (pytest finds it by name)


def tiny_png(width: int, height: int, shade: int) -> bytes:
    """A real, decodable grey PNG (no Pillow needed)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + bytes([shade]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG_PROGRESS = tiny_png(8, 8, 40)
PNG_FINAL = tiny_png(16, 12, 200)


class JapaneseTranslator(app_commands.Translator):
    """Serves the `ja=` extras of each `locale_str`, as the product's translator would."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        return string.extras.get(locale.value)


class Buttons(discord.ui.View):
    """A persistent view: dispatched by custom_id, whatever message it is on."""

    def __init__(self, bot: DemoBot) -> None:
        super().__init__(timeout=None)
        self.bot = bot

    @discord.ui.button(label="Again", custom_id="demo:again", style=discord.ButtonStyle.primary)
    async def again(
        self, interaction: discord.Interaction, button: discord.ui.Button[Buttons]
    ) -> None:
        self.bot.presses.append(interaction)
        await interaction.response.edit_message(content=f"pressed by {interaction.user.id}")

    @discord.ui.button(label="Quiet", custom_id="demo:quiet")
    async def quiet(
        self, interaction: discord.Interaction, button: discord.ui.Button[Buttons]
    ) -> None:
        self.bot.presses.append(interaction)
        await interaction.response.defer()  # type 6 for a component: no new message
        await interaction.edit_original_response(content="edited after a deferred update")
        await interaction.followup.send("only you see this", ephemeral=True)

    @discord.ui.button(label="Reply", custom_id="demo:reply")
    async def reply(
        self, interaction: discord.Interaction, button: discord.ui.Button[Buttons]
    ) -> None:
        self.bot.presses.append(interaction)
        await interaction.response.send_message("a new message")

    @discord.ui.select(
        custom_id="demo:pick",
        options=[
            discord.SelectOption(label="Red", value="red"),
            discord.SelectOption(label="Blue", value="blue"),
        ],
    )
    async def pick(
        self, interaction: discord.Interaction, select: discord.ui.Select[Buttons]
    ) -> None:
        self.bot.presses.append(interaction)
        await interaction.response.edit_message(content=f"picked {', '.join(select.values)}")


class DemoBot(commands.Bot):
    """A miniature of the product bot: defer, progress edit, final edit, 🔁, admin group."""

    def __init__(self, guild_id: int) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.guild_id = guild_id
        self.raw_reactions: list[discord.RawReactionActionEvent] = []
        self.removed_guilds: list[int] = []
        self.limit_targets: list[discord.Member | discord.User] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.errors: list[BaseException] = []
        self.uploads: list[tuple[discord.Attachment, bytes]] = []
        self.presses: list[discord.Interaction] = []

    async def setup_hook(self) -> None:
        bot = self
        self.add_view(Buttons(self))

        @app_commands.command(name="vary", description="Start from your own picture")
        async def vary(
            interaction: discord.Interaction[DemoBot], image: discord.Attachment
        ) -> None:
            data = await image.read()
            bot.uploads.append((image, data))
            await interaction.response.send_message(f"got {len(data)} bytes", ephemeral=True)

        @app_commands.command(name="buttons", description="A message with buttons")
        async def buttons(interaction: discord.Interaction[DemoBot]) -> None:
            await interaction.response.send_message("pick one", view=Buttons(bot))

        @app_commands.command(name="draw", description="Draw a picture")
        @app_commands.describe(prompt="What to draw")
        @app_commands.rename(prompt=app_commands.locale_str("prompt", ja="プロンプト"))
        async def draw(interaction: discord.Interaction[DemoBot], prompt: str) -> None:
            await bot.gate.wait()  # lets a test stall the bot before its first response
            await interaction.response.defer()
            await interaction.edit_original_response(
                content=f"drawing {discord.utils.escape_markdown(prompt)}: 50%",
                attachments=[discord.File(io.BytesIO(PNG_PROGRESS), "progress.png")],
            )
            message = await interaction.edit_original_response(
                content="done",
                embed=discord.Embed(title=prompt[:256], description="seed 42"),
                attachments=[discord.File(io.BytesIO(PNG_FINAL), "result.png")],
            )
            await message.add_reaction("🔁")

        ratelimit = app_commands.Group(
            name="ratelimit",
            description="Rate limits",
            default_permissions=discord.Permissions(manage_guild=True),
        )

        @ratelimit.command(name="set", description="Set a user's limit")
        async def set_limit(
            interaction: discord.Interaction[DemoBot],
            user: discord.Member,
            images: app_commands.Range[int, 1, 100],
            per: Literal["hour", "day"],
        ) -> None:
            bot.limit_targets.append(user)
            await interaction.response.send_message(
                f"{user.mention}: {images} per {per} (admin={interaction.permissions.manage_guild})",
                ephemeral=True,
            )

        server = app_commands.Group(
            name="guild", description="Server-wide limits", parent=ratelimit
        )

        @server.command(name="default", description="Set the server default")
        async def set_default(interaction: discord.Interaction[DemoBot], images: int) -> None:
            await interaction.response.send_message(f"default {images}", ephemeral=True)

        @app_commands.command(name="ping", description="Defer, then answer with a followup")
        async def ping(interaction: discord.Interaction[DemoBot]) -> None:
            await interaction.response.defer(ephemeral=True)
            await interaction.followup.send("pong")
            await interaction.followup.send("second", ephemeral=True)

        await self.tree.set_translator(JapaneseTranslator())
        self.tree.add_command(ping)
        self.tree.add_command(vary)
        self.tree.add_command(buttons)
        self.tree.add_command(draw)
        self.tree.add_command(ratelimit)
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)

    async def _on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        self.errors.append(getattr(error, "original", error))

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before every re-IDENTIFY; the fake has no login quota."""

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.raw_reactions.append(payload)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        self.removed_guilds.append(guild.id)


async def draw(
    fake: FakeDiscord, prompt: str = "ピカチュウ", **kwargs: object
) -> InteractionRecord:
    return await fake.invoke("draw", {"prompt": prompt}, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def fake(fake_discord: FakeDiscord) -> FakeDiscord:  # noqa: F811  (the plugin's fixture)
    """The plugin's started, redirected fake, under a short name."""
    return fake_discord


# -- redirect and plain HTTP ------------------------------------------------------------------


async def test_redirect_points_discord_py_at_the_fake_and_restores_it() -> None:
    before_base = discord.http.Route.BASE
    before_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord() as fake:
        with fake.redirect():
            assert f"http://127.0.0.1:{fake.port}/api/v10" == discord.http.Route.BASE
            assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
    assert before_base == discord.http.Route.BASE
    assert before_gateway == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY


async def test_rest_answers_exact_json_content_type_and_refuses_a_bad_token(
    fake: FakeDiscord,
) -> None:
    async with aiohttp.ClientSession() as http:
        ok = await http.get(
            f"{fake.api_base}/users/@me", headers={"Authorization": f"Bot {fake.token}"}
        )
        bad = await http.get(f"{fake.api_base}/users/@me", headers={"Authorization": "Bot nope"})
        assert ok.headers["Content-Type"] == "application/json"
        assert (await ok.json())["id"] == str(fake.bot_user.id)
        assert bad.status == 401
    assert [(r.path, r.status, r.authorized) for r in fake.requests] == [
        ("/users/@me", 200, True),
        ("/users/@me", 401, False),
    ]


async def test_upload_over_the_file_limit_is_refused_with_413(fake: FakeDiscord) -> None:
    fake.max_file_size = 1024
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", '{"content": "big"}', content_type="application/json")
    form.add_field(
        "files[0]", b"x" * 2048, filename="big.bin", content_type="application/octet-stream"
    )
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{fake.api_base}/channels/{fake.channel.id}/messages",
            data=form,
            headers={"Authorization": f"Bot {fake.token}"},
        )
        body = await response.json()
    assert (response.status, body["code"]) == (413, 40005)
    assert fake.channel_messages(fake.channel) == []


async def test_gateway_speaks_plain_or_zlib_acks_heartbeats_and_refuses_a_bad_token(
    fake: FakeDiscord,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{fake.gateway_url}?v=10&encoding=json") as ws:
            hello = await ws.receive()
            assert hello.type is aiohttp.WSMsgType.TEXT
            assert hello.json()["op"] == 10
            await ws.send_json({"op": 1, "d": None})
            assert (await ws.receive_json())["op"] == 11
            await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 1, "properties": {}}})
            closed = await ws.receive()
            assert closed.type is aiohttp.WSMsgType.CLOSE
            assert closed.data == 4004
        async with http.ws_connect(f"{fake.gateway_url}?v=10&compress=zlib-stream") as ws:
            hello = await ws.receive()
            assert hello.type is aiohttp.WSMsgType.BINARY
            assert hello.data.endswith(b"\x00\x00\xff\xff")
            assert b'"op":10' in zlib.decompressobj().decompress(hello.data)
    assert fake.gateway.identify_count == 0


# -- connecting and syncing -------------------------------------------------------------------


async def test_bot_connects_with_zlib_and_sees_ready_and_guild_create(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        assert bot.user is not None
        assert bot.user.id == fake.bot_user.id
        guild = bot.get_guild(fake.guild.id)
        assert guild is not None
        assert guild.get_channel(fake.channel.id) is not None
        assert bot.application_id == fake.application.id
        assert fake.gateway.identify_count == 1
        assert fake.gateway.connections[0].compress  # discord.py asked for zlib-stream
        assert fake.gateway.connections[0].heartbeats >= 1  # sent at once after HELLO
        assert [f.t for f in fake.gateway.frames if f.op == 0][:2] == ["READY", "GUILD_CREATE"]
        assert fake.requests_to("GET", "/oauth2/applications/@me")


async def test_a_thread_arrives_with_the_guild_and_is_fetched_with_its_parent(
    fake: FakeDiscord,
) -> None:
    thread = fake.add_thread(fake.channel, "thread")
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        guild = bot.get_guild(fake.guild.id)
        assert guild is not None
        cached = guild.get_thread(thread.id)
        assert cached is not None
        assert cached.parent_id == fake.channel.id
        fetched = await bot.fetch_channel(thread.id)
        assert isinstance(fetched, discord.Thread)
        assert fetched.parent_id == fake.channel.id
        assert guild.get_channel(thread.id) is None  # a thread, not one of the channels


async def test_tree_sync_is_stored_with_options_localizations_and_permissions(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)):
        commands_by_name = {c["name"]: c for c in fake.registered_commands(fake.guild)}
    assert fake.sync_count(fake.guild) == 1
    assert fake.registered_commands() == []  # nothing global was synced
    assert set(commands_by_name) == {"buttons", "draw", "ping", "ratelimit", "vary"}
    prompt = commands_by_name["draw"]["options"][0]
    assert (prompt["name"], prompt["type"], prompt["required"]) == ("prompt", 3, True)
    assert prompt["name_localizations"] == {"ja": "プロンプト"}
    ratelimit = commands_by_name["ratelimit"]
    assert ratelimit["default_member_permissions"] == str(Perm.MANAGE_GUILD)
    set_options = ratelimit["options"][0]["options"]
    assert [(o["name"], o["type"]) for o in set_options] == [("user", 6), ("images", 4), ("per", 3)]


# -- the main flow ----------------------------------------------------------------------------


async def test_deferred_command_edits_twice_with_png_and_its_reaction_echo_reaches_the_bot(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        record = await draw(fake)
        edits = await record.wait_edits(2)
        await fake.wait_until(lambda: bot.raw_reactions)

    assert record.deferred
    assert not record.ephemeral
    assert record.response_delay is not None
    assert record.first_response_at is not None
    assert record.first_response_at <= edits[0].at <= edits[1].at
    assert [e.content for e in edits] == ["drawing ピカチュウ: 50%", "done"]
    assert [a.data for a in edits[0].attachments] == [PNG_PROGRESS]
    assert [(a.filename, a.data) for a in edits[1].attachments] == [("result.png", PNG_FINAL)]
    assert edits[1].embeds[0]["title"] == "ピカチュウ"

    message = record.original_message
    assert message is not None
    assert not message.loading
    assert message.author.id == fake.bot_user.id
    assert message.channel_id == fake.channel.id
    assert message.reactions == {"🔁": [fake.bot_user.id]}
    assert fake.requests_to("PUT", "/channels/*/messages/*/reactions/🔁/@me", status=204)
    echo = bot.raw_reactions[0]
    assert (echo.user_id, echo.message_id, str(echo.emoji)) == (
        fake.bot_user.id,
        message.id,
        "🔁",
    )
    assert fake.dispatched("MESSAGE_UPDATE")  # the bot's own edits are echoed too
    assert bot.errors == []


async def test_attachment_urls_serve_the_uploaded_bytes(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)):
        record = await draw(fake)
        await record.wait_edits(2)
        message = record.original_message
        assert message is not None
        async with aiohttp.ClientSession() as http:
            response = await http.get(message.attachments[0].url)
            assert await response.read() == PNG_FINAL
    assert message.attachments[0].to_payload()["width"] == 16


async def test_429_on_an_edit_is_retried_by_discord_py_and_lands_once(fake: FakeDiscord) -> None:
    rule = fake.fail_next("PATCH", "/webhooks/*/*/messages/@original", retry_after=0.05)
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        record = await draw(fake)
        await record.wait_edits(2)
        await fake.wait_until(lambda: bot.raw_reactions)
    patches = fake.requests_to("PATCH", "/webhooks/*/*/messages/@original")
    assert [p.status for p in patches] == [429, 200, 200]
    assert patches[0].fault
    assert len(rule.hits) == 1
    assert rule.remaining == 0
    # The retry resent the same multipart body: payload_json and the file bytes.
    assert patches[0].json == patches[1].json
    assert patches[0].files[0].data == patches[1].files[0].data == PNG_PROGRESS
    assert [e.content for e in record.edits] == ["drawing ピカチュウ: 50%", "done"]
    assert bot.errors == []


async def test_gateway_drop_then_resume_replays_events_missed_while_away(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        record = await draw(fake)
        await record.wait_edits(2)
        await fake.wait_until(lambda: bot.raw_reactions)
        message = record.original_message
        assert message is not None

        assert await fake.drop_gateway() == 1
        await fake.react(fake.alice, fake.channel.id, message.id, "🔁")  # while disconnected
        await fake.wait_resumed()
        await fake.wait_until(lambda: len(bot.raw_reactions) == 2)

    assert bot.raw_reactions[1].user_id == fake.alice.id
    assert fake.gateway.identify_count == 1  # resumed, not re-identified
    assert fake.gateway.connections[-1].path == "/resume"
    assert "RESUMED" in [f.t for f in fake.gateway.frames]
    assert message.reactions["🔁"] == [fake.bot_user.id, fake.alice.id]


async def test_500_on_a_channel_message_is_retried_and_delivered_once(fake: FakeDiscord) -> None:
    fake.fail_next("POST", "/channels/*/messages", status=500)
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        channel = bot.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        await channel.send("once")
    posts = fake.requests_to("POST", "/channels/*/messages")
    assert [p.status for p in posts] == [500, 200]
    assert [m.content for m in fake.channel_messages(fake.channel)] == ["once"]


# -- interactions: options, deadlines, tokens -------------------------------------------------


async def test_first_followup_after_a_defer_becomes_the_original_response(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)):
        record = await fake.invoke("ping")
        await record.wait_followups(1)
    original = record.original_message
    assert original is not None
    assert record.ephemeral
    assert (original.content, original.ephemeral, original.loading) == ("pong", True, False)
    assert [m.content for m in record.followups] == ["second"]
    assert record.followups[0].ephemeral


async def test_subcommand_group_with_user_option_resolves_the_member(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        record = await fake.invoke(
            "ratelimit set",
            {"user": fake.bob, "images": 5, "per": "day"},
            user=fake.moderator,
            locale="ja",
        )
        await record.wait_response()
    assert record.callback_type == 4
    assert record.ephemeral
    message = record.original_message
    assert message is not None
    assert message.content == f"<@{fake.bob.id}>: 5 per day (admin=True)"
    assert message.allowed_mentions == {"parse": []}
    assert message.pings() == set()
    assert [(o["name"], o["type"]) for o in record.payload["data"]["options"]] == [("set", 1)]
    target = bot.limit_targets[0]
    assert isinstance(target, discord.Member)
    assert target.id == fake.bob.id
    assert not fake.dispatched("MESSAGE_CREATE")  # ephemeral messages never reach the gateway


async def test_nested_subcommand_group_is_sent_as_group_then_subcommand(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)):
        record = await fake.invoke("ratelimit guild default", {"images": 7}, user=fake.moderator)
        await record.wait_response()
    group = record.payload["data"]["options"][0]
    assert (group["name"], group["type"]) == ("guild", 2)
    assert (group["options"][0]["name"], group["options"][0]["type"]) == ("default", 1)
    assert record.original_message is not None
    assert record.original_message.content == "default 7"


async def test_invoke_refuses_what_the_discord_client_would_not_send(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)):
        with pytest.raises(ValueError, match="not registered"):
            await fake.invoke("nope")
        with pytest.raises(ValueError, match="needs a sub-command"):
            await fake.invoke("ratelimit")
        with pytest.raises(ValueError, match="outside"):
            await fake.invoke("ratelimit set", {"user": fake.bob, "images": 0, "per": "day"})
        with pytest.raises(ValueError, match="choices"):
            await fake.invoke("ratelimit set", {"user": fake.bob, "images": 1, "per": "week"})
        with pytest.raises(ValueError, match="missing"):
            await fake.invoke("draw", {})
    assert fake.interactions == {}


async def test_a_first_response_after_the_deadline_gets_unknown_interaction(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        bot.gate.clear()
        record = await draw(fake)
        await fake.wait_for_event("INTERACTION_CREATE")
        fake.advance_time(fake.interaction_deadline + 0.1)
        bot.gate.set()
        rejected = await record.wait_rejected()
        await fake.wait_until(lambda: bot.errors)
    assert (rejected[0].status, rejected[0].code) == (404, 10062)
    assert not record.responded
    assert record.original_message is None
    assert isinstance(bot.errors[0], discord.NotFound)


async def test_an_edit_after_the_token_expired_gets_401(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        record = await draw(fake, age=fake.token_lifetime + 1)  # user ran it 15 min ago
        rejected = await record.wait_rejected()
        await fake.wait_until(lambda: bot.errors)
    assert record.deferred  # the callback itself was in time
    assert (rejected[0].status, rejected[0].code) == (401, 50027)
    assert record.edits == []


# -- permissions, guild removal, channel messages ---------------------------------------------


async def test_denied_send_permission_and_removal_from_the_guild_are_seen_by_the_bot(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        channel = bot.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        await fake.deny_channel_permission(fake.channel, Perm.SEND_MESSAGES)
        await fake.wait_until(lambda: not channel.permissions_for(channel.guild.me).send_messages)
        with pytest.raises(discord.Forbidden) as denied:
            await channel.send("hello")
        await fake.remove_bot_from_guild(fake.guild)
        await fake.wait_until(lambda: bot.removed_guilds)
        with pytest.raises(discord.Forbidden) as gone:
            await channel.send("hello")
    assert denied.value.code == 50013
    assert gone.value.code == 50001
    assert bot.get_guild(fake.guild.id) is None
    assert fake.channel_messages(fake.channel) == []


async def test_channel_reply_keeps_its_reference_and_is_echoed(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        original = await fake.post_message(fake.alice, fake.channel, "hi <@123>")
        channel = bot.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send(
            "again <@123>",
            reference=discord.MessageReference(message_id=original.id, channel_id=channel.id),
        )
        await fake.wait_for_event("MESSAGE_CREATE", lambda d: d["id"] == str(sent.id))
    reply = fake.messages[sent.id]
    assert reply.message_reference is not None
    assert reply.message_reference["message_id"] == str(original.id)
    assert reply.type == 19
    assert sent.reference is not None
    assert sent.reference.message_id == original.id
    assert reply.pings() == set()
    assert original.pings() == {"user:123"}
    # Without the Message Content intent the bot never saw alice's text.
    alice_event = fake.dispatched("MESSAGE_CREATE")[0]
    assert alice_event["id"] == str(original.id)
    assert alice_event["content"] == ""


# -- more gateway failures ----------------------------------------------------------------------


async def test_abrupt_network_failure_and_op7_reconnect_are_both_resumed(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)):
        await fake.drop_gateway(abort=True)
        await fake.wait_resumed()
        await fake.request_reconnect()
        await fake.wait_resumed(2)
        record = await draw(fake)
        await record.wait_edits(2)
    assert fake.gateway.identify_count == 1
    assert record.original_message is not None


async def test_invalid_session_makes_the_client_identify_again(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)):
        first = await fake.wait_connected()
        await fake.invalidate_session()
        await fake.wait_until(lambda: fake.gateway.identify_count == 2)
        second = await fake.wait_connected()
        record = await fake.invoke("ping")
        await record.wait_followups(1)
    assert first.ended
    assert second.session_id != first.session_id
    assert fake.gateway.resume_count == 0


# -- dropped connections ------------------------------------------------------------------------


async def _post(
    http: aiohttp.ClientSession, fake: FakeDiscord, content: str
) -> aiohttp.ClientResponse:
    return await http.post(
        f"{fake.api_base}/channels/{fake.channel.id}/messages",
        json={"content": content},
        headers={"Authorization": f"Bot {fake.token}"},
    )


async def test_a_connection_dropped_before_storing_has_no_effect_and_after_storing_has(
    fake: FakeDiscord,
) -> None:
    fake.drop_next("POST", "/channels/*/messages")
    fake.drop_next("POST", "/channels/*/messages", process=True)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await _post(http, fake, "lost on the way")
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await _post(http, fake, "stored, answer lost")
        after = await _post(http, fake, "the connection pool still works")
        assert after.status == 200
    assert [m.content for m in fake.channel_messages(fake.channel)] == [
        "stored, answer lost",
        "the connection pool still works",
    ]
    posts = fake.requests_to("POST", "/channels/*/messages")
    assert [(p.status, p.dropped) for p in posts] == [(0, True), (200, True), (200, False)]


async def test_discord_py_sees_the_dropped_connection_on_a_post_and_on_an_edit(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        channel = bot.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        fake.drop_next("POST", "/channels/*/messages", process=True)
        with pytest.raises(aiohttp.ClientError):
            await channel.send("landed anyway")
        # The first edit of /draw is cut before it lands: the bot's command fails with it.
        fake.drop_next("PATCH", "/webhooks/*/*/messages/@original")
        record = await draw(fake)
        await fake.wait_until(lambda: bot.errors)
    assert [m.content for m in fake.channel_messages(fake.channel)][:1] == ["landed anyway"]
    assert isinstance(bot.errors[0], aiohttp.ClientError)
    assert record.deferred
    assert record.edits == []
    assert record.original_message is not None
    assert record.original_message.loading
    assert [p.dropped for p in fake.requests_to("PATCH", "/webhooks/*/*/messages/@original")] == [
        True
    ]


# -- the per-channel rate limit -----------------------------------------------------------------


async def test_the_sixth_post_in_a_window_gets_429_with_what_discord_py_reads(
    fake: FakeDiscord,
) -> None:
    limit = fake.limit_channel_messages(limit=5, window=60.0)
    async with aiohttp.ClientSession() as http:
        answers = [await _post(http, fake, f"post {i}") for i in range(6)]
        bodies = [await a.json() for a in answers]
    assert [a.status for a in answers] == [200] * 5 + [429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    refused = answers[-1]
    assert refused.headers["Via"]
    assert refused.headers["X-RateLimit-Scope"] == "user"
    assert 0 < bodies[-1]["retry_after"] <= 60.0
    assert bodies[-1]["global"] is False
    assert len(fake.channel_messages(fake.channel)) == 5
    assert limit.limited == [(limit.limited[0][0], fake.channel.id)]
    fake.advance_time(60.0)  # a new window
    async with aiohttp.ClientSession() as http:
        assert (await _post(http, fake, "later")).status == 200


async def test_discord_py_sleeps_on_the_429_and_retries_by_itself(fake: FakeDiscord) -> None:
    fake.limit_channel_messages(limit=5, window=0.5)
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        async with aiohttp.ClientSession() as http:  # someone else spends the window
            for i in range(5):
                assert (await _post(http, fake, f"other {i}")).status == 200
        channel = bot.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        sent = [await channel.send(f"bot {i}") for i in range(6)]
    statuses = [p.status for p in fake.requests_to("POST", "/channels/*/messages")]
    assert statuses[:6] == [200] * 5 + [429]
    assert statuses.count(200) == 11
    assert [m.id for m in fake.channel_messages(fake.channel)][-6:] == [m.id for m in sent]
    assert bot.errors == []


async def test_the_rate_limit_is_off_unless_a_test_turns_it_on(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        answers = [await _post(http, fake, f"post {i}") for i in range(8)]
    assert {a.status for a in answers} == {200}
    assert "X-RateLimit-Remaining" not in answers[0].headers


# -- attachments a user gives a command -----------------------------------------------------------


def tiny_jpeg_header(width: int, height: int) -> bytes:
    """SOI, an APP0 segment and a baseline SOF0: enough for a reader of sizes."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


async def test_an_attachment_option_reaches_the_bot_resolved_and_downloadable(
    fake: FakeDiscord,
) -> None:
    png = tiny_png(24, 20, 90)
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        record = await fake.invoke("vary", {"image": ("mine.png", png)})
        await record.wait_response()
        upload = fake.upload("photo.jpg", tiny_jpeg_header(640, 480))
        second = await fake.invoke("vary", {"image": upload}, user=fake.bob)
        await second.wait_response()
        lying = fake.upload("notes.png", b"just text", content_type="image/png", width=9, height=9)
        third = await fake.invoke("vary", {"image": lying})
        await third.wait_response()
    (image, data), (photo, photo_data), (fake_png, fake_data) = bot.uploads
    assert (image.filename, image.content_type, image.width, image.height) == (
        "mine.png",
        "image/png",
        24,
        20,
    )
    assert data == png
    assert image.size == len(png)
    assert image.ephemeral
    assert image.url == image.proxy_url
    assert image.url.startswith(fake.base_url + "/attachments/")
    (option,) = record.payload["data"]["options"]
    assert (option["type"], option["value"]) == (11, str(image.id))
    resolved = record.payload["data"]["resolved"]["attachments"][str(image.id)]
    assert resolved["content_type"] == "image/png"
    assert (photo.content_type, photo.width, photo.height) == ("image/jpeg", 640, 480)
    assert photo_data == upload.data
    assert (fake_png.content_type, fake_png.width, fake_data) == ("image/png", 9, b"just text")


async def test_attachment_downloads_carry_the_content_type(fake: FakeDiscord) -> None:
    gif = b"GIF89a" + struct.pack("<HH", 3, 2) + b"\x00" * 20
    files = [
        fake.upload("a.gif", gif),
        fake.upload("b.bin", b"\x00\x01"),
        fake.upload("c.txt", b"hello"),
    ]
    async with aiohttp.ClientSession() as http:
        types = []
        for attachment in files:
            response = await http.get(attachment.url)
            assert await response.read() == attachment.data
            types.append(response.headers["Content-Type"])
    assert types == ["image/gif", "application/octet-stream", "text/plain"]
    assert files[0].to_payload()["width"] == 3


# -- messages read back, buttons pressed --------------------------------------------------------


async def test_a_button_press_updates_the_message_it_is_on(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        command = await fake.invoke("buttons")
        await command.wait_response()
        message = command.original_message
        assert message is not None
        buttons, (select,) = (row["components"] for row in message.components)
        assert (select["type"], select["custom_id"]) == (3, "demo:pick")
        assert [(b["custom_id"], b["label"]) for b in buttons] == [
            ("demo:again", "Again"),
            ("demo:quiet", "Quiet"),
            ("demo:reply", "Reply"),
        ]
        press = await fake.press(message, "demo:again", user=fake.bob)
        await press.wait_response()
        await fake.wait_for_event("MESSAGE_UPDATE", lambda d: d["id"] == str(message.id))
        pick = await fake.press(message, "demo:pick", values=["blue"])
        await pick.wait_response()
    assert press.type == 3
    assert press.callback_type == 7
    assert press.payload["data"] == {"custom_id": "demo:again", "component_type": 2}
    assert press.payload["message"]["id"] == str(message.id)
    assert press.edits[0].content == f"pressed by {fake.bob.id}"
    assert fake.message(message.id).components == message.components  # kept: not in the edit
    assert [e.via for e in press.edits] == ["callback"]
    assert pick.payload["data"] == {
        "custom_id": "demo:pick",
        "component_type": 3,
        "values": ["blue"],
    }
    assert pick.edits[-1].content == "picked blue"
    assert bot.presses[0].message is not None
    assert bot.presses[0].message.id == message.id


async def test_a_deferred_press_edits_the_pressed_message_and_a_reply_is_a_new_message(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)):
        command = await fake.invoke("buttons")
        await command.wait_response()
        message = command.original_message
        assert message is not None
        quiet = await fake.press(message, "demo:quiet")
        await quiet.wait_followups(1)
        reply = await fake.press(message, "demo:reply")
        await reply.wait_response()
    assert quiet.callback_type == 6
    assert quiet.original_message_id == message.id
    assert fake.message(message.id).content == "edited after a deferred update"
    assert [m.content for m in quiet.followups] == ["only you see this"]
    assert quiet.followups[0].ephemeral
    answer = reply.original_message
    assert answer is not None
    assert (answer.content, answer.type, answer.id != message.id) == ("a new message", 19, True)
    assert answer.message_reference is not None
    assert answer.message_reference["message_id"] == str(message.id)


async def test_press_refuses_what_a_discord_client_could_not_press(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)):
        command = await fake.invoke("buttons")
        await command.wait_response()
        message = command.original_message
        assert message is not None
        with pytest.raises(ValueError, match="no component"):
            await fake.press(message, "demo:nope")
        await fake.delete_message(message)
        with pytest.raises(ValueError, match="no message"):
            await fake.press(message, "demo:again")
    assert fake.message(message.id).deleted
    assert fake.dispatched("MESSAGE_DELETE")[0]["id"] == str(message.id)


async def test_invalid_components_are_refused_like_discord_does(fake: FakeDiscord) -> None:
    button = {"type": 2, "style": 1, "label": "x", "custom_id": "same"}
    bad = [
        [{"type": 1, "components": [button, button]}],  # duplicate custom_id
        [{"type": 1, "components": [{**button, "custom_id": "y" * 101}]}],
        [{"type": 1, "components": [{"type": 2, "style": 5, "label": "link"}]}],  # no url
        [{"type": 1, "components": []}],
    ]
    async with aiohttp.ClientSession() as http:
        for rows in bad:
            response = await http.post(
                f"{fake.api_base}/channels/{fake.channel.id}/messages",
                json={"content": "x", "components": rows},
                headers={"Authorization": f"Bot {fake.token}"},
            )
            assert (response.status, (await response.json())["code"]) == (400, 50035), rows
    assert fake.channel_messages(fake.channel) == []
    # The spec itself refuses the long custom_id and the empty row; the duplicate and the
    # link without a url are rules the spec cannot state, checked by the fake's own code.
    taken = fake.take_spec_violations()
    assert [(v.where, v.rule) for v in taken] == [
        ("$.components[0].components[0].custom_id", "maxLength: 100"),
        ("$.components[0].components", "minItems: 1"),
    ]


async def test_a_channel_edit_of_an_interaction_message_is_recorded_and_read_back(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        record = await draw(fake)
        await record.wait_edits(2)
        message = record.original_message
        assert message is not None
        channel = bot.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        fetched = await channel.fetch_message(message.id)
        await fetched.edit(content="resumed in place")
        await record.wait_edits(3)
    assert fetched.attachments[0].filename == "result.png"
    assert fetched.embeds[0].title == "ピカチュウ"
    assert [e.via for e in record.edits] == ["webhook", "webhook", "channel"]
    assert record.edits[-1].attachments[0].data == PNG_FINAL  # kept: not in the edit
    assert fake.message(message.id).content == "resumed in place"


# -- what a modified client can send --------------------------------------------------------------


async def test_wire_values_and_lone_surrogates_reach_the_bot_as_sent(fake: FakeDiscord) -> None:
    async with run_client(fake, DemoBot(fake.guild.id)) as bot:
        with pytest.raises(ValueError, match="strict=False"):
            await fake.invoke("ratelimit guild default", {"images": WireValue("7")})
        record = await fake.invoke(
            "ratelimit guild default", {"images": WireValue("7")}, user=fake.moderator, strict=False
        )
        await record.wait_response()
        broken = await draw(fake, "ピカ\ud800", strict=False)  # JSON can carry "\ud800"
        await broken.wait_edits(2)
    (option,) = record.payload["data"]["options"][0]["options"][0]["options"]
    assert option == {"name": "images", "type": 4, "value": "7"}
    assert record.original_message is not None
    assert record.original_message.content == "default 7"  # discord.py passed the str through
    assert broken.edits[-1].embeds[0]["title"] == "ピカ\ud800"
    assert bot.errors == []
