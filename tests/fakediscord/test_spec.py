"""The fake holds every REST call to Discord's own OpenAPI description (`spec/openapi.json`):
what breaks it is refused as Discord would and fails the test that made it."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import discord
import pytest
from aiohttp import web
from discord import app_commands

from tests.fakediscord import FakeDiscord, SpecViolationError, run_client
from tests.fakediscord.plugin import fake_discord  # noqa: F401  (pytest finds it by name)
from tests.fakediscord.rest import API_PREFIX, RestApi
from tests.fakediscord.spec import discord_spec, refresh
from tests.fakediscord.spec.validator import SPEC_FILE

ROOT = Path(__file__).resolve().parents[2]


class PanelBot(discord.Client):
    """One slash command, `/panel`, answering with a button whose label is `label`."""

    def __init__(self, label: str) -> None:
        super().__init__(intents=discord.Intents.none())
        self.tree = app_commands.CommandTree(self)
        self.errors: list[Exception] = []
        self.label = label

        @self.tree.command(description="Shows a button")
        async def panel(interaction: discord.Interaction) -> None:
            view = discord.ui.View()
            view.add_item(discord.ui.Button(label=self.label, custom_id="panel:go"))
            try:
                await interaction.response.send_message("panel", view=view)
            except discord.HTTPException as exc:
                self.errors.append(exc)

    async def setup_hook(self) -> None:
        await self.tree.sync()


def embed_with_fields(count: int) -> discord.Embed:
    embed = discord.Embed(title="stats")
    for i in range(count):
        embed.add_field(name=f"f{i}", value="v")
    return embed


@pytest.fixture
def fake(fake_discord: FakeDiscord) -> FakeDiscord:  # noqa: F811  (the plugin's fixture)
    return fake_discord


async def test_an_embed_with_26_fields_is_refused_naming_the_body_path_and_the_rule(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, discord.Client(intents=discord.Intents(guilds=True))) as client:
        channel = client.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        await channel.send(embed=embed_with_fields(25))  # the most Discord takes
        with pytest.raises(discord.HTTPException) as refused:
            await channel.send(embed=embed_with_fields(26))
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert "In embeds.0.fields: Must be 25 or fewer in length." in str(refused.value)
    (violation,) = fake.take_spec_violations()
    assert (violation.operation, violation.where, violation.rule) == (
        "create_message",
        "$.embeds[0].fields",
        "maxItems: 25",
    )
    assert "body $.embeds[0].fields" in str(violation)
    assert "maxItems: 25" in str(violation)
    assert len(fake.bot_messages(fake.channel)) == 1  # the refused one was not posted


async def test_a_button_label_of_81_characters_is_refused_in_an_interaction_response(
    fake: FakeDiscord,
) -> None:
    async with run_client(fake, PanelBot(label="x" * 81)) as bot:
        record = await fake.invoke("panel", {})
        await fake.wait_until(lambda: bot.errors)
    (violation,) = fake.take_spec_violations()
    assert (violation.operation, violation.where, violation.rule) == (
        "create_interaction_response",
        "$.data.components[0].components[0].label",
        "maxLength: 80",
    )
    assert violation.message == "Must be 80 or fewer in length."
    assert isinstance(bot.errors[0], discord.HTTPException)
    assert bot.errors[0].code == 50035
    assert not record.responded  # Discord did not take the answer


async def test_a_label_of_80_characters_is_accepted(fake: FakeDiscord) -> None:
    async with run_client(fake, PanelBot(label="x" * 80)) as bot:
        record = await fake.invoke("panel", {})
        await record.wait_response()
    assert bot.errors == []
    assert fake.spec_violations == []
    message = record.original_message
    assert message is not None
    button = message.component("panel:go")
    assert button is not None
    assert button["label"] == "x" * 80


async def test_snowflakes_discord_py_sends_as_numbers_are_accepted(fake: FakeDiscord) -> None:
    async with run_client(fake, discord.Client(intents=discord.Intents(guilds=True))) as client:
        channel = client.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        first = await channel.send("first")
        mentions = discord.AllowedMentions(users=[discord.Object(fake.alice.id)])
        await channel.send(f"<@{fake.alice.id}>", reference=first, allowed_mentions=mentions)
    reply = fake.requests_to("POST", "/channels/*/messages")[-1]
    # discord.py sent the ids as JSON numbers, where the spec types snowflakes as strings.
    assert reply.json["message_reference"]["message_id"] == first.id
    assert reply.json["allowed_mentions"]["users"] == [fake.alice.id]
    assert reply.status == 200
    assert fake.spec_violations == []
    assert fake.bot_messages(fake.channel)[-1].pings() == {f"user:{fake.alice.id}"}


async def test_a_snowflake_that_is_not_one_is_refused(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{fake.api_base}/channels/{fake.channel.id}/messages",
            json={"content": "x", "message_reference": {"message_id": "12ab"}},
            headers={"Authorization": f"Bot {fake.token}"},
        )
        body = await response.json()
    assert (response.status, body["code"]) == (400, 50035)
    assert body["errors"]["message_reference"]["message_id"]["_errors"][0]["code"]
    (violation,) = fake.take_spec_violations()
    assert violation.where == "$.message_reference.message_id"
    assert violation.rule.startswith("pattern:")


async def test_endpoints_the_spec_does_not_have_are_refused_and_recorded(
    fake: FakeDiscord,
) -> None:
    headers = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        unknown = await http.post(f"{fake.api_base}/channels/{fake.channel.id}/frobnicate")
        wrong_method = await http.put(f"{fake.api_base}/gateway/bot")
        # In the spec but not modelled by the fake: a plain 404, not a violation.
        unmodelled = await http.get(f"{fake.api_base}/guilds/{fake.guild.id}/bans")
        # What discord.py asks for to connect is in the spec.
        gateway = await http.get(f"{fake.api_base}/gateway/bot")
    assert (unknown.status, wrong_method.status, unmodelled.status) == (404, 405, 404)
    assert gateway.status == 200
    taken = fake.take_spec_violations()
    assert [(v.method, v.rule) for v in taken] == [
        ("POST", "unknown endpoint"),
        ("PUT", "method not allowed"),
    ]
    assert str(taken[0]) == (
        f"POST /channels/{fake.channel.id}/frobnicate: unknown endpoint: not in Discord's spec"
    )
    assert str(taken[1]) == "PUT /gateway/bot: method not allowed: /gateway/bot takes GET"


async def test_the_fake_fails_when_it_stops_with_violations_nobody_took() -> None:
    with pytest.raises(SpecViolationError) as failed:
        async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
            await http.post(
                f"{fake.api_base}/channels/{fake.channel.id}/messages",
                json={"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]},
                headers={"Authorization": f"Bot {fake.token}"},
            )
    assert "1 call(s) broke Discord's API spec" in str(failed.value)
    assert "body $.embeds[0].fields: Must be 25 or fewer in length. [rule maxItems: 25]" in str(
        failed.value
    )


def test_a_test_that_breaks_the_spec_fails_at_teardown_with_the_path_and_the_rule(
    tmp_path: Path,
) -> None:
    test_file = tmp_path / "test_breaks_spec.py"
    test_file.write_text(
        textwrap.dedent(
            """
            import aiohttp
            from tests.fakediscord.plugin import fake_discord  # noqa: F401

            async def test_sends_a_long_label(fake_discord):
                fake = fake_discord
                row = {"type": 1, "components": [
                    {"type": 2, "style": 1, "label": "x" * 81, "custom_id": "go"}]}
                async with aiohttp.ClientSession() as http:
                    await http.post(
                        f"{fake.api_base}/channels/{fake.channel.id}/messages",
                        json={"content": "x", "components": [row]},
                        headers={"Authorization": f"Bot {fake.token}"},
                    )
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
         "asyncio_mode=auto", "--rootdir", str(tmp_path), str(test_file)],
        check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout, done.stdout
    assert "1 error" in done.stdout
    assert "ERROR at teardown of test_sends_a_long_label" in done.stdout
    assert (
        "body $.components[0].components[0].label: Must be 80 or fewer in length. "
        "[rule maxLength: 80]"
    ) in done.stdout


def test_literal_segments_win_over_parameters_when_finding_the_operation() -> None:
    spec = discord_spec()
    assert spec.template("/webhooks/1/abc/messages/@original") == (
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original"
    )
    assert spec.template("/webhooks/1/abc/messages/2") == (
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"
    )
    assert spec.template("/users/@me") == "/users/@me"
    assert spec.template("/users/5") == "/users/{user_id}"


def test_integer_fields_take_int_parseable_strings_as_discord_says() -> None:
    command = {"name": "draw", "description": "d", "default_member_permissions": "32"}
    spec = discord_spec()
    path = "/applications/1/commands"
    assert spec.check("POST", path, "application/json", command) == []
    (violation,) = spec.check(
        "POST", path, "application/json", {**command, "default_member_permissions": "all"}
    )
    assert violation.where == "$.default_member_permissions"


def test_a_body_is_required_where_the_spec_says_so_and_files_alone_are_one() -> None:
    spec = discord_spec()
    (missing,) = spec.check("POST", "/channels/1/messages", None, None)
    assert (missing.rule, missing.message) == ("required", "a request body is required")
    # A multipart form of files without a payload_json is a body (of no other field).
    assert spec.check("POST", "/channels/1/messages", "multipart/form-data", None) == []
    (extra,) = spec.check("POST", "/channels/1/typing", "application/json", {})
    assert extra.message == "this operation takes no body"


def test_the_vendored_spec_is_the_file_its_source_names() -> None:
    source = json.loads(SPEC_FILE.with_name("source.json").read_text())
    assert source["repository"] == "discord/discord-api-spec"
    assert source["commit"].startswith("74fda0f")
    assert hashlib.sha256(SPEC_FILE.read_bytes()).hexdigest() == source["sha256"]
    assert "Copyright 2023 Discord" in SPEC_FILE.with_name("LICENSE").read_text()


# -- the refresh tool, against a loopback stand-in for GitHub -------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class GitHubStandIn:
    """A local HTTP server answering GitHub's commit API (a bare sha) and raw file URLs."""

    base: str = ""
    doc: bytes = b""  # what the raw URL serves

    @property
    def urls(self) -> dict[str, str]:
        return {"api_base": f"{self.base}/api", "raw_base": f"{self.base}/raw"}


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    stand_in = GitHubStandIn(doc=SPEC_FILE.read_bytes())

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/api/repos/discord/discord-api-spec/commits/main":
                ok = self.headers["Accept"] == "application/vnd.github.sha"
                body = COMMIT.encode() if ok else b"{}"
            elif self.path == f"/raw/discord/discord-api-spec/{COMMIT}/specs/openapi.json":
                body = stand_in.doc
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="fake-github", daemon=True)
    thread.start()
    stand_in.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_refresh_resolves_the_branch_downloads_and_records_the_commit(
    tmp_path: Path, github: GitHubStandIn
) -> None:
    source = refresh.refresh("main", directory=tmp_path, **github.urls)
    assert (tmp_path / "openapi.json").read_bytes() == github.doc
    written = json.loads((tmp_path / "source.json").read_text())
    assert written == source
    assert written["commit"] == COMMIT
    assert written["sha256"] == hashlib.sha256(github.doc).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["openapi.json", "source.json"]


def test_refresh_refuses_a_document_that_is_not_openapi_3_1_and_keeps_the_old_copy(
    tmp_path: Path, github: GitHubStandIn
) -> None:
    (tmp_path / "openapi.json").write_text("old")
    github.doc = json.dumps({"swagger": "2.0", "paths": {}}).encode()
    with pytest.raises(ValueError, match=r"not an OpenAPI 3\.1 document"):
        refresh.refresh(COMMIT, directory=tmp_path, **github.urls)
    assert [p.name for p in tmp_path.iterdir()] == ["openapi.json"]
    assert (tmp_path / "openapi.json").read_text() == "old"


def test_every_endpoint_the_fake_serves_is_in_the_spec() -> None:
    app = web.Application()
    RestApi(FakeDiscord(populate=False)).install(app)
    spec = discord_spec()
    served = [
        (route.method, route.resource.canonical[len(API_PREFIX) :])
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(API_PREFIX)
        and route.method != "*"
    ]
    assert len(served) > 30
    missing = []
    for method, canonical in served:
        path = re.sub(r"\{[^}]+\}", "1", canonical)
        template = spec.template(path)
        if template is None or spec.operation(method, template) is None:
            missing.append(f"{method} {canonical}")
    assert missing == []
