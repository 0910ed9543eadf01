"""A table of hostile and broken `/pokemon` inputs, each sent through the real command path:
the fake Discord's INTERACTION_CREATE → discord.py → the bot → storage → worker.

Every case must get one clear, localized answer (a refusal) or a sane picture; nothing may
crash, ping anyone, or leave a job row half-written (no row, or a terminal one).
`strict=False` sends what a modified client could send but Discord's own client would refuse.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from bot.i18n import t
from bot.validation import MAX_NEGATIVE_CHARS, MAX_PROMPT_CHARS, SEED_MAX
from storage import Storage
from tests.bot.conftest import BotRig, GatedEngine, png_of
from tests.fakediscord import FakeDiscord, FakeUser, InteractionRecord, WireValue

pytestmark = pytest.mark.asyncio(loop_scope="module")

TERMINAL = {"done", "failed", "cancelled"}
MAX_STEPS = 10  # the rig's POKEMON_MAX_STEPS


@dataclass(frozen=True, slots=True)
class Case:
    """One input: the options sent, and either the refusal key (+ params) or None for a picture."""

    id: str
    options: dict[str, Any]
    refusal: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    locale: str = "en-US"
    strict: bool = False


def refused(case_id: str, options: dict[str, Any], key: str, **params: Any) -> Case:
    return Case(case_id, options, key, params)


LONG = "ピ" * 10_000
RANGE_STEPS = {"min": 1, "max": MAX_STEPS}
RANGE_GUIDANCE = {"min": 1.0, "max": 20.0}

CASES: list[Case] = [
    # -- empty, whitespace, invisible ----------------------------------------------------------
    refused("empty", {"prompt": ""}, "error.prompt_empty"),
    refused("spaces", {"prompt": "    "}, "error.prompt_empty"),
    refused("ideographic-space-and-newlines", {"prompt": "\u3000\n\t\r\n"}, "error.prompt_empty"),
    refused("control-only", {"prompt": "\x00\x01\x07\x1b"}, "error.prompt_empty"),
    refused("zero-width-only", {"prompt": "\u200b\u200c\u200d\u2060"}, "error.prompt_empty"),
    refused("bidi-only", {"prompt": "\u202e\u202d\u2066\u2069"}, "error.prompt_empty"),
    refused("bom-only", {"prompt": "\ufeff"}, "error.prompt_empty"),
    Case("empty-ja", {"prompt": " "}, "error.prompt_empty", locale="ja"),
    # -- length --------------------------------------------------------------------------------
    refused(
        "ten-thousand-chars", {"prompt": LONG}, "error.prompt_too_long", length=10_000, max=1000
    ),
    refused(
        "one-over-the-limit",
        {"prompt": "あ" * (MAX_PROMPT_CHARS + 1)},
        "error.prompt_too_long",
        length=MAX_PROMPT_CHARS + 1,
        max=MAX_PROMPT_CHARS,
    ),
    Case("at-the-limit", {"prompt": "あ" * MAX_PROMPT_CHARS}, strict=True),
    refused(
        "negative-ten-thousand",
        {"prompt": "ピカチュウ", "negative": LONG},
        "error.negative_too_long",
        length=10_000,
        max=MAX_NEGATIVE_CHARS,
    ),
    Case(
        "too-long-ja",
        {"prompt": LONG},
        "error.prompt_too_long",
        {"length": 10_000, "max": MAX_PROMPT_CHARS},
        locale="ja",
    ),
    # -- odd characters that still leave a prompt ----------------------------------------------
    Case("control-inside", {"prompt": "ピカ\x00チュウ\x07\x1b[31m赤"}),
    Case("bidi-override-inside", {"prompt": "\u202eウュチカピ\u202c"}),
    Case("zero-width-inside", {"prompt": "ピ\u200bカ\u200dチュウ\ufeff"}),
    Case("emoji-only", {"prompt": "🔥🐉⚡"}),
    Case("emoji-zwj-and-flags", {"prompt": "👨\u200d👩\u200d👧🇯🇵"}),
    Case("zalgo", {"prompt": "Z̴̡̢a̷l̸g̵o̶ ポケモン"}),
    Case("right-to-left-script", {"prompt": "مرحبا بوكيمون"}),
    # -- mentions and markdown -----------------------------------------------------------------
    Case("everyone", {"prompt": "@everyone"}),
    Case("here-and-text", {"prompt": "@here ピカチュウ"}),
    Case("user-mention", {"prompt": "<@{alice}> <@!{alice}>"}),
    Case("role-mention", {"prompt": "<@&{role}> ピカチュウ"}),
    Case("channel-mention", {"prompt": "<#{channel}>"}),
    Case("markdown", {"prompt": "**太字** __下線__ ~~取消~~ ||ネタバレ|| `code`"}),
    Case("code-fence", {"prompt": "```py\nprint('ピカチュウ')\n```"}),
    Case("quote-heading-link", {"prompt": "> 引用\n# 見出し [link](https://example.com)"}),
    Case("mentions-in-negative", {"prompt": "ピカチュウ", "negative": "@everyone <@&{role}>"}),
    # -- the tokenizer's special-token strings -------------------------------------------------
    Case("eos", {"prompt": "</s>"}),
    Case("unk", {"prompt": "<unk>"}),
    Case("pad-bert", {"prompt": "[PAD]"}),
    Case("bos-eos-pad", {"prompt": "<s>ピカチュウ</s><pad>"}),
    Case("clip-endoftext", {"prompt": "<|startoftext|><|endoftext|>"}),
    Case("cls-sep-mask", {"prompt": "[CLS][SEP][MASK]"}),
    Case("sentencepiece-marker", {"prompt": "▁▁▁"}),
    # -- text our own code formats -------------------------------------------------------------
    Case("format-placeholders", {"prompt": "{error_id} {prompt} %s %d {{}} {0}"}),
    Case("sql", {"prompt": "'); DROP TABLE jobs; --"}),
    # -- negative prompt -----------------------------------------------------------------------
    Case("negative-empty", {"prompt": "ピカチュウ", "negative": ""}),
    Case("negative-invisible", {"prompt": "ピカチュウ", "negative": "\u200b\u202e"}),
    refused("negative-without-prompt", {"negative": "ぼやけた"}, "error.command_mismatch"),
    refused("no-options-at-all", {}, "error.command_mismatch"),
    # -- steps ---------------------------------------------------------------------------------
    refused("steps-zero", {"prompt": "ピカチュウ", "steps": 0}, "error.steps_range", **RANGE_STEPS),
    refused(
        "steps-negative", {"prompt": "ピカチュウ", "steps": -1}, "error.steps_range", **RANGE_STEPS
    ),
    Case(
        "steps-over-the-servers-max",
        {"prompt": "ピカチュウ", "steps": MAX_STEPS + 1},
        "error.steps_range",
        RANGE_STEPS,
        strict=True,
    ),
    refused(
        "steps-huge", {"prompt": "ピカチュウ", "steps": 10**6}, "error.steps_range", **RANGE_STEPS
    ),
    refused(
        "steps-beyond-int64",
        {"prompt": "ピカチュウ", "steps": 2**70},
        "error.steps_range",
        **RANGE_STEPS,
    ),
    Case("steps-one", {"prompt": "ピカチュウ", "steps": 1}, strict=True),
    # -- seed ----------------------------------------------------------------------------------
    refused(
        "seed-negative", {"prompt": "ピカチュウ", "seed": -1}, "error.seed_range", max=SEED_MAX
    ),
    refused(
        "seed-2-to-32",
        {"prompt": "ピカチュウ", "seed": SEED_MAX + 1},
        "error.seed_range",
        max=SEED_MAX,
    ),
    refused(
        "seed-2-to-64", {"prompt": "ピカチュウ", "seed": 2**64}, "error.seed_range", max=SEED_MAX
    ),
    Case("seed-zero", {"prompt": "ピカチュウ", "seed": 0}, strict=True),
    Case("seed-max", {"prompt": "ピカチュウ", "seed": SEED_MAX}, strict=True),
    # -- guidance ------------------------------------------------------------------------------
    refused(
        "guidance-zero",
        {"prompt": "ピカチュウ", "guidance": 0.0},
        "error.guidance_range",
        **RANGE_GUIDANCE,
    ),
    refused(
        "guidance-negative",
        {"prompt": "ピカチュウ", "guidance": -5.0},
        "error.guidance_range",
        **RANGE_GUIDANCE,
    ),
    refused(
        "guidance-huge",
        {"prompt": "ピカチュウ", "guidance": 1e308},
        "error.guidance_range",
        **RANGE_GUIDANCE,
    ),
    refused(
        "guidance-nan",
        {"prompt": "ピカチュウ", "guidance": math.nan},
        "error.guidance_range",
        **RANGE_GUIDANCE,
    ),
    refused(
        "guidance-infinity",
        {"prompt": "ピカチュウ", "guidance": math.inf},
        "error.guidance_range",
        **RANGE_GUIDANCE,
    ),
    refused(
        "guidance-minus-infinity",
        {"prompt": "ピカチュウ", "guidance": -math.inf},
        "error.guidance_range",
        **RANGE_GUIDANCE,
    ),
    Case(
        "guidance-nan-ja",
        {"prompt": "ピカチュウ", "guidance": math.nan},
        "error.guidance_range",
        RANGE_GUIDANCE,
        locale="ja",
    ),
    Case("guidance-bounds", {"prompt": "ピカチュウ", "guidance": 20.0}, strict=True),
    # -- options Discord does not know ---------------------------------------------------------
    Case("unknown-extra-option", {"prompt": "ピカチュウ", "admin": True}),
    # -- text SQLite cannot store (UTF-8 has no lone surrogates) ---------------------------------
    refused("lone-surrogate", {"prompt": "ピカ\ud800チュウ"}, "error.text_unencodable"),
    refused("lone-low-surrogate-only", {"prompt": "\udfff"}, "error.text_unencodable"),
    refused(
        "lone-surrogate-in-negative",
        {"prompt": "ピカチュウ", "negative": "\ud83d"},
        "error.text_unencodable",
    ),
    Case("lone-surrogate-ja", {"prompt": "\ud800"}, "error.text_unencodable", locale="ja"),
    # -- options of the wrong JSON type (discord.py passes them through unchecked) ------------
    refused("prompt-as-a-number", {"prompt": WireValue(12345)}, "error.invalid_option"),
    refused("prompt-as-a-list", {"prompt": WireValue(["ピカ"])}, "error.invalid_option"),
    refused("prompt-as-null", {"prompt": WireValue(None)}, "error.invalid_option"),
    refused(
        "negative-as-a-bool",
        {"prompt": "ピカ", "negative": WireValue(True)},
        "error.invalid_option",
    ),
    refused(
        "seed-as-a-string", {"prompt": "ピカ", "seed": WireValue("42")}, "error.invalid_option"
    ),
    refused("seed-as-a-float", {"prompt": "ピカ", "seed": WireValue(4.5)}, "error.invalid_option"),
    refused(
        "steps-as-a-bool", {"prompt": "ピカ", "steps": WireValue(True)}, "error.invalid_option"
    ),
    Case(
        "seed-as-a-string-ja",
        {"prompt": "ピカ", "seed": WireValue("42")},
        "error.invalid_option",
        locale="ja",
    ),
]


class Table:
    """One bot for the whole table (a fresh user per case keeps the cases independent)."""

    def __init__(self, fake: FakeDiscord, rig: BotRig) -> None:
        self.fake = fake
        self.rig = rig
        self.role = fake.add_role(fake.guild, "Pinged role")
        self.count = 0

    def new_user(self) -> FakeUser:
        self.count += 1
        user = self.fake.add_user(f"case-{self.count}")
        self.fake.add_member(self.fake.guild, user)
        return user

    def fill(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        fake = self.fake
        return (
            value.replace("{alice}", str(fake.alice.id))
            .replace("{role}", str(self.role.id))
            .replace("{channel}", str(fake.channel.id))
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def table(tiny_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Table]:
    from bot.settings import Settings

    async with FakeDiscord() as fake:
        with fake.redirect():
            settings = Settings(
                _env_file=None,
                discord_token=fake.token,
                pokemon_model="tiny",
                pokemon_device="cpu",
                pokemon_db=tmp_path_factory.mktemp("table") / "bot.sqlite3",
                pokemon_size=64,
                pokemon_steps=2,
                pokemon_max_steps=MAX_STEPS,
                pokemon_queue_size=8,
                pokemon_max_batch=1,
                pokemon_user_max_pending=2,
                pokemon_safety_checker="off",
                pokemon_rate_limit=20,
                pokemon_rate_period="day",
                pokemon_owner_ids=[],
                pokemon_dev_guild=None,
            )
            rig = BotRig(fake=fake, settings=settings, engine=GatedEngine(tiny_engine))
            async with rig.run():
                yield Table(fake, rig)


def answer_of(record: InteractionRecord) -> tuple[str, bool]:
    """The text the user was shown as a refusal, and whether only they could see it."""
    callback = record.callbacks[0]
    if callback.type == 4:
        assert callback.data is not None
        return str(callback.data.get("content")), bool(callback.ephemeral)
    (followup,) = record.followups
    return followup.content, followup.ephemeral


async def rows_of(store: Storage, user_id: int) -> list[Any]:
    return await store.jobs.recent_for_user(user_id, limit=100)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_gets_a_clear_answer_or_a_sane_picture_and_nothing_half_written(
    table: Table, case: Case
) -> None:
    fake, rig = table.fake, table.rig
    (bot,) = rig.bots
    user = table.new_user()
    options = {name: table.fill(value) for name, value in case.options.items()}
    before = set(fake.messages)

    record = await fake.invoke(
        "pokemon", options, user=user, locale=case.locale, strict=case.strict
    )
    await record.wait_response()
    if case.refusal is None:
        result = await rig.wait_result(record)
        image = png_of(result)
        assert (image.format, image.size) == ("PNG", (64, 64))
        assert result.embeds
        assert result.embeds[0]["description"]
        assert "@everyone" not in result.embeds[0]["description"]
        (job,) = await rows_of(bot.store, user.id)
        await fake.wait_until(lambda: job.id not in bot.service.active)
    else:
        await fake.wait_until(lambda: record.callbacks[0].type == 4 or record.followups, within=10)
        text, ephemeral = answer_of(record)
        locale = "ja" if case.locale == "ja" else "en"
        if case.refusal == "error.invalid_option":
            assert text.startswith(t(case.refusal, locale, value="")), text
        else:
            assert text == t(case.refusal, locale, **case.params)
        assert ephemeral
        assert "Traceback" not in text

    # Nothing crashed: the bot still answers, and no unexpected-error id was shown.
    assert not bot.is_closed()
    assert record.rejected == []
    # Nothing pinged anyone.
    for message_id in set(fake.messages) - before:
        assert fake.messages[message_id].pings() == set(), fake.messages[message_id].content
    # Nothing half-written: no row for a refusal before admission, else only terminal rows.
    rows = await rows_of(bot.store, user.id)
    if case.refusal is not None:
        assert rows == []
    assert all(row.state in TERMINAL for row in rows), [(r.id, r.state) for r in rows]
    assert await bot.store.jobs.pending() == []
