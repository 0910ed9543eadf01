"""`/ratelimit`, `/usage` and `/stats` end to end: the real bot, worker and SQLite file against
the loopback fake Discord (fixtures in `tests/bot/conftest.py`)."""

from __future__ import annotations

import io

from PIL import Image

from bot.charts import HEIGHT_PX, WIDTH_PX
from bot.client import PokemonBot
from bot.cogs.stats import DEFAULT_DAYS
from bot.i18n import t
from tests.bot.conftest import BotRig
from tests.fakediscord import FakeDiscord, FakeMessage, InteractionRecord

PROMPT = "青い炎をまとった猫のポケモン"


async def reply_of(record: InteractionRecord) -> FakeMessage:
    """The one message an immediate (not deferred) ephemeral reply created."""
    callback = await record.wait_response()
    assert callback.type == 4, f"expected an immediate message, got callback type {callback.type}"
    assert callback.ephemeral, "admin and usage replies must be ephemeral"
    message = record.original_message
    assert message is not None
    return message


async def refusal_of(record: InteractionRecord) -> FakeMessage:
    """The ephemeral refusal /pokemon sends after its public defer (as a followup)."""
    [message] = await record.wait_followups(1)
    assert message.ephemeral
    return message


def text_before(key: str, locale: str, placeholder: str, **params: object) -> str:
    """The catalog text up to `{placeholder}` (whose value, e.g. a timestamp, varies)."""
    return t(key, locale, **params, **{placeholder: "\0"}).split("\0")[0]


async def test_admin_limit_of_one_per_hour_refuses_the_users_second_image_in_japanese(
    fake_discord: FakeDiscord, bot_rig: BotRig, pokemon_bot: PokemonBot
) -> None:
    fake = fake_discord
    record = await fake.invoke(
        "ratelimit set",
        {"user": fake.alice, "images": 1, "per": "hour"},
        user=fake.moderator,
    )
    reply = await reply_of(record)
    assert reply.content == t(
        "ratelimit.set.done",
        "en",
        user=f"<@{fake.alice.id}>",
        old=t("ratelimit.value", "en", images=20, period=t("ratelimit.period.day", "en")),
        old_source=t("ratelimit.source.global", "en"),
        new=t("ratelimit.value", "en", images=1, period=t("ratelimit.period.hour", "en")),
    )

    first = await fake.invoke("pokemon", {"prompt": PROMPT}, user=fake.alice, locale="ja")
    result = await bot_rig.wait_result(first)
    assert result.attachments, "the first image within the limit is delivered"

    second = await fake.invoke("pokemon", {"prompt": PROMPT}, user=fake.alice, locale="ja")
    refusal = await refusal_of(second)
    expected = text_before(
        "error.rate_limited",
        "ja",
        "retry",
        limit=1,
        period=t("pokemon.period.hour", "ja"),
    )
    assert refusal.content.startswith(expected), refusal.content
    assert "<t:" in refusal.content, "the refusal says when the next image is possible"
    quota = await pokemon_bot.store.limits.quota(fake.guild.id, fake.alice.id)
    assert (quota.limit, quota.period, quota.used, quota.source) == (1, "hour", 1, "user")


async def test_non_admin_ratelimit_set_is_refused_at_run_time_and_changes_nothing(
    fake_discord: FakeDiscord, pokemon_bot: PokemonBot
) -> None:
    fake = fake_discord
    # Discord would hide the command from bob by default, but a server can override that: the
    # fake delivers it, as Discord does after such an override.
    record = await fake.invoke(
        "ratelimit set",
        {"user": fake.alice, "images": 0, "per": "day"},
        user=fake.bob,
        locale="ja",
    )
    reply = await reply_of(record)
    assert reply.content == t("error.not_allowed", "ja")

    limits = pokemon_bot.store.limits
    effective = await limits.effective(fake.guild.id, fake.alice.id)
    assert (effective.images, effective.period, effective.source) == (20, "day", "global")
    assert await limits.list_user_limits(fake.guild.id) == []
    assert await limits.audit(fake.guild.id) == []


async def test_owner_id_without_manage_server_may_set_limits_and_is_audited(
    fake_discord: FakeDiscord, bot_rig: BotRig
) -> None:
    fake = fake_discord
    bot_rig.settings = bot_rig.settings.model_copy(update={"pokemon_owner_ids": [fake.bob.id]})
    async with bot_rig.run() as bot:
        record = await fake.invoke(
            "ratelimit default", {"images": 5, "per": "hour"}, user=fake.bob, locale="ja"
        )
        reply = await reply_of(record)
        assert reply.content == t(
            "ratelimit.default.done",
            "ja",
            old=t("ratelimit.value", "ja", images=20, period=t("ratelimit.period.day", "ja")),
            old_source=t("ratelimit.source.global", "ja"),
            new=t("ratelimit.value", "ja", images=5, period=t("ratelimit.period.hour", "ja")),
        )
        [entry] = await bot.store.limits.audit(fake.guild.id)
        assert (entry.actor_id, entry.action, entry.new_images, entry.new_period) == (
            fake.bob.id,
            "set_default",
            5,
            "hour",
        )


async def test_ratelimit_show_reflects_a_change(
    fake_discord: FakeDiscord, pokemon_bot: PokemonBot
) -> None:
    fake = fake_discord
    admin = fake.moderator

    def value(images: int, period: str) -> str:
        return t(
            "ratelimit.value", "en", images=images, period=t(f"ratelimit.period.{period}", "en")
        )

    before = await reply_of(await fake.invoke("ratelimit show", {}, user=admin))
    assert t("ratelimit.show.guild_default_unset", "en") in before.content
    assert t("ratelimit.show.global_default", "en", value=value(20, "day")) in before.content
    assert t("ratelimit.show.no_users", "en") in before.content

    await reply_of(await fake.invoke("ratelimit default", {"images": 5, "per": "day"}, user=admin))
    await reply_of(
        await fake.invoke(
            "ratelimit set", {"user": fake.alice, "images": 3, "per": "hour"}, user=admin
        )
    )

    after = await reply_of(await fake.invoke("ratelimit show", {}, user=admin))
    assert t("ratelimit.show.guild_default", "en", value=value(5, "day")) in after.content
    assert t("ratelimit.show.users_header", "en", count=1) in after.content
    line = t("ratelimit.show.user_line", "en", user=f"<@{fake.alice.id}>", value=value(3, "hour"))
    assert line in after.content

    member = await reply_of(await fake.invoke("ratelimit show", {"user": fake.alice}, user=admin))
    assert member.content.startswith(
        t(
            "ratelimit.show.member",
            "en",
            user=f"<@{fake.alice.id}>",
            value=value(3, "hour"),
            source=t("ratelimit.source.user", "en"),
        )
    )
    assert t("usage.used.hour", "en", used=0, limit=3) in member.content

    cleared = await reply_of(await fake.invoke("ratelimit clear", {"user": fake.alice}, user=admin))
    assert cleared.content == t(
        "ratelimit.clear.done",
        "en",
        user=f"<@{fake.alice.id}>",
        old=value(3, "hour"),
        new=value(5, "day"),
        new_source=t("ratelimit.source.guild", "en"),
    )
    final = await reply_of(await fake.invoke("ratelimit show", {}, user=admin))
    assert t("ratelimit.show.no_users", "en") in final.content
    actions = [entry.action for entry in await pokemon_bot.store.limits.audit(fake.guild.id)]
    assert actions == ["clear_user", "set_user", "set_default"]


async def test_usage_shows_the_users_count_and_remaining_quota(
    fake_discord: FakeDiscord, bot_rig: BotRig, pokemon_bot: PokemonBot
) -> None:
    fake = fake_discord
    empty = await reply_of(await fake.invoke("usage", {}, user=fake.alice))
    assert t("usage.used.day", "en", used=0, limit=20) in empty.content
    assert t("usage.today", "en", count=0) in empty.content
    assert t("usage.reset_full", "en") in empty.content

    await bot_rig.wait_result(await fake.invoke("pokemon", {"prompt": PROMPT}, user=fake.alice))

    usage = await reply_of(await fake.invoke("usage", {}, user=fake.alice, locale="ja"))
    assert t("usage.used.day", "ja", used=1, limit=20) in usage.content
    assert t("usage.today", "ja", count=1) in usage.content
    assert t("usage.remaining", "ja", remaining=19) in usage.content
    assert text_before("usage.reset", "ja", "when") + "<t:" in usage.content
    assert (
        t(
            "usage.limit",
            "ja",
            value=t("ratelimit.value", "ja", images=20, period=t("ratelimit.period.day", "ja")),
            source=t("ratelimit.source.global", "ja"),
        )
        in usage.content
    )


async def test_stats_returns_a_chart_png_with_the_totals(
    fake_discord: FakeDiscord, bot_rig: BotRig, pokemon_bot: PokemonBot
) -> None:
    fake = fake_discord
    await bot_rig.wait_result(await fake.invoke("pokemon", {"prompt": PROMPT}, user=fake.alice))

    record = await fake.invoke("stats", {"days": 7}, user=fake.moderator)
    callback = await record.wait_response()
    assert callback.type == 5, "the chart takes time: /stats defers first"
    assert callback.ephemeral
    await record.wait_until(
        lambda r: r.original_message is not None and bool(r.original_message.attachments),
        within=30,
    )
    message = record.original_message
    assert message is not None
    image = Image.open(io.BytesIO(message.attachments[0].data))
    image.load()
    assert (image.format, image.size) == ("PNG", (WIDTH_PX, HEIGHT_PX))
    totals = await pokemon_bot.store.usage.totals(fake.guild.id, 7)
    assert message.content.startswith(
        t(
            "stats.summary",
            "en",
            window="Last 7 days",
            images="1 image",  # one of each: the singular, not "1 images by 1 users"
            users="1 user",
            jobs=t("count.jobs", "en", count=totals.jobs),
            failed=totals.failed,
            cancelled=totals.cancelled,
            pending=totals.pending,
        )
    )
    # Admins see whether anything can draw right now (the in-process worker: 1 online).
    assert message.content.endswith("Generation: 1 worker online, 0 waiting, 0 drawing now.")


async def test_stats_for_an_empty_guild_still_sends_a_chart(
    fake_discord: FakeDiscord, pokemon_bot: PokemonBot
) -> None:
    fake = fake_discord
    record = await fake.invoke("stats", {}, user=fake.moderator, locale="ja")
    await record.wait_until(
        lambda r: r.original_message is not None and bool(r.original_message.attachments),
        within=30,
    )
    message = record.original_message
    assert message is not None
    assert message.content.startswith(t("stats.empty", "ja", days=DEFAULT_DAYS) + "\n")
    image = Image.open(io.BytesIO(message.attachments[0].data))
    image.load()
    assert image.size == (WIDTH_PX, HEIGHT_PX)


async def test_non_admin_stats_is_refused_without_rendering(
    fake_discord: FakeDiscord, pokemon_bot: PokemonBot
) -> None:
    fake = fake_discord
    record = await fake.invoke("stats", {}, user=fake.alice)
    reply = await reply_of(record)
    assert reply.content == t("error.not_allowed", "en")
    assert not reply.attachments


async def test_admin_commands_are_registered_with_japanese_descriptions_and_admin_defaults(
    fake_discord: FakeDiscord, pokemon_bot: PokemonBot
) -> None:
    commands = {c["name"]: c for c in fake_discord.registered_commands()}
    ratelimit, stats, usage = commands["ratelimit"], commands["stats"], commands["usage"]
    # Manage Server (1 << 5) by default; /usage is for everyone.
    assert (ratelimit["default_member_permissions"], stats["default_member_permissions"]) == (
        "32",
        "32",
    )
    assert usage.get("default_member_permissions") is None
    assert ratelimit["description_localizations"]["ja"] == t("cmd.ratelimit.description", "ja")
    assert usage["description_localizations"]["ja"] == t("cmd.usage.description", "ja")
    subcommands = {o["name"]: o for o in ratelimit["options"]}
    assert set(subcommands) == {"set", "default", "clear", "show"}
    for name, sub in subcommands.items():
        assert sub["description_localizations"]["ja"] == t(
            f"cmd.ratelimit.{name}.description", "ja"
        )
        for option in sub.get("options", []):
            key = f"cmd.ratelimit.{name}.{option['name']}.description"
            assert option["description_localizations"]["ja"] == t(key, "ja"), key
    per = next(o for o in subcommands["set"]["options"] if o["name"] == "per")
    assert [c["name_localizations"]["ja"] for c in per["choices"]] == [
        t("ratelimit.period.hour", "ja"),
        t("ratelimit.period.day", "ja"),
    ]
    [days] = stats["options"]
    assert (days["min_value"], days["max_value"]) == (1, 90)
    assert days["description_localizations"]["ja"] == t("cmd.stats.days.description", "ja")
