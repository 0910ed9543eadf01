"""Every `custom_id` the bot ever put on a message parses to its action; anything else gets
the "expired" answer. No Discord: `bot.custom_ids` and the views of `bot.buttons` are pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.buttons import cancel_buttons, forget_buttons, result_buttons, upscaled_buttons
from bot.custom_ids import ForgetPress, HistoryPress, JobPress, Press, SettingsPress, parse
from bot.history_ui import history_page
from bot.i18n import t
from bot.presses import JOB_HANDLERS, expired_text
from bot.settings_ui import settings_view
from storage import UserDefaults


@pytest.mark.parametrize(
    ("custom_id", "press"),
    [
        # Today's formats (bot.buttons).
        ("pkmn:regen:42", JobPress("regen", 42)),
        ("pkmn:info:42", JobPress("info", 42)),
        ("pkmn:delete:42", JobPress("delete", 42)),
        ("pkmn:cancel:42", JobPress("cancel", 42)),
        ("pkmn:vary:42:subtle", JobPress("vary", 42, kind="subtle")),
        ("pkmn:vary:42:strong", JobPress("vary", 42, kind="strong")),
        ("pkmn:vary:42:subtle3", JobPress("vary", 42, kind="subtle", picture=3)),
        ("pkmn:vary:42:strong4", JobPress("vary", 42, kind="strong", picture=4)),
        ("pkmn:up:42", JobPress("up", 42)),
        ("pkmn:up:42:2", JobPress("up", 42, picture=2)),
        ("pkmn:forget:123456789012345678", ForgetPress(123456789012345678)),
        ("pkmn:set:7:size", SettingsPress(7, "size")),
        ("pkmn:set:7:count", SettingsPress(7, "count")),
        ("pkmn:set:7:translate", SettingsPress(7, "translate")),
        ("pkmn:set:7:negative", SettingsPress(7, "negative")),
        ("pkmn:set:7:reset", SettingsPress(7, "reset")),
        ("pkmn:setneg:7", SettingsPress(7, "submit")),
        ("pkmn:hist:7:0", HistoryPress(7, 0)),
        ("pkmn:hist:7:4", HistoryPress(7, 4)),
        # Older formats: the first 🎨 buttons, the pokemon: prefix, /privacy's memory-only View.
        ("pokemon:vary:strong:42", JobPress("vary", 42, kind="strong")),
        ("pokemon:vary:subtle:42", JobPress("vary", 42, kind="subtle")),
        ("pokemon:regen:42", JobPress("regen", 42)),
        ("pokemon:cancel:42", JobPress("cancel", 42)),
        ("privacy:forget", ForgetPress(None)),
    ],
)
def test_every_format_the_bot_ever_posted_parses_to_its_action(
    custom_id: str, press: Press
) -> None:
    assert parse(custom_id) == press


@pytest.mark.parametrize(
    "custom_id",
    [
        "",
        "pkmn",
        "pkmn:regen:abc",  # not a job id
        "pkmn:regen:",
        "pkmn:regen:42:x",  # an argument where none belongs
        "pkmn:vary:42",  # 🎨 without its strength
        "pkmn:vary:42:weird",
        "pkmn:vary:42:subtle0",  # pictures count from 1
        "pkmn:vary:42:subtle12",
        "pkmn:forget:abc",
        "pkmn:forget:7:x",
        "pkmn:upscale:42",  # an action this version does not have (⬆️ is `pkmn:up`)
        "pkmn:up:42:0",  # pictures count from 1
        "pkmn:up:42:12",
        "pkmn:up:42:x",
        "pokemon:vary:medium:42",
        "pokemon:upscale:42",
        "privacy:forget:7",
        "PKMN:regen:42",
        "pkmn:regen:42 ",
        "pkmn:regen:123456789012345678901",  # longer than any id
        "somebody-elses-button",
        "pkmn:set:7",  # a setting without its field
        "pkmn:set:7:steps",  # a field /settings does not have
        "pkmn:setneg:7:x",
        "pkmn:hist:7",
        "pkmn:hist:7:next",
        "pkmn:hist:7:100",  # past any page
    ],
)
def test_unknown_and_malformed_ids_parse_to_nothing(custom_id: str) -> None:
    assert parse(custom_id) is None


def test_every_button_the_bot_builds_today_parses_back_to_a_handled_action() -> None:
    views = [
        result_buttons(7, "en"),
        result_buttons(7, "ja", pictures=4),
        upscaled_buttons(8, "en"),
        cancel_buttons(7, "en"),
        forget_buttons(99, "en"),
    ]
    ids = [c["custom_id"] for v in views for row in v.to_components() for c in row["components"]]
    # One picture: five and ⬆️; a set of four: three, eight 🎨 and four ⬆️; ⬆️ 🗑️; ✖; forget.
    assert len(ids) == 6 + 15 + 2 + 1 + 1
    assert {"pkmn:up:7", "pkmn:up:7:4", "pkmn:up:8", "pkmn:delete:8"} <= set(ids)
    for custom_id in ids:
        press = parse(custom_id)
        assert press is not None, custom_id
        assert isinstance(press, ForgetPress) or press.action in JOB_HANDLERS
    assert parse(ids[-1]) == ForgetPress(99)


def test_settings_and_history_items_parse_back_to_their_presses() -> None:
    settings = settings_view(7, UserDefaults(), "en").to_components()
    ids = [c["custom_id"] for row in settings for c in row["components"]]
    assert [parse(i) for i in ids] == [
        SettingsPress(7, field) for field in ("size", "count", "translate", "negative", "reset")
    ]
    assert [press.opens_form for press in map(parse, ids) if press is not None] == [
        False,
        False,
        False,
        True,
        False,
    ]
    _, pages = history_page([], 7, 0, "en")
    assert pages is None  # one page: no buttons


def test_the_bots_views_are_never_dispatched_by_discord_py() -> None:
    """A dispatchable view would be stored per message and its buttons answered by
    discord.py as well as the router: a press answered twice, and memory held forever."""
    for view in (result_buttons(7, "en"), cancel_buttons(7, "en"), forget_buttons(9, "ja")):
        assert not view.is_dispatchable()
        assert view.timeout is None


def test_the_expired_answer_is_localized_and_says_what_to_use_instead() -> None:
    english, japanese = expired_text("en-US"), expired_text("ja")
    assert english == t("button.expired", "en")
    assert japanese == t("button.expired", "ja")
    assert english != japanese
    for text in (english, japanese):
        assert "/pokemon" in text


def test_nothing_in_the_bot_registers_a_press_handler_beside_the_router() -> None:
    """A `DynamicItem`, a persistent view or a decorated button would be called by discord.py
    for the same press the router answers: two answers, the second refused by Discord."""
    forbidden = {"DynamicItem", "add_dynamic_items", "add_view", "button", "select"}
    bot_dir = Path(__file__).resolve().parents[2] / "bot"
    found = {
        f"{path.relative_to(bot_dir)}:{node.lineno} {name}"
        for path in bot_dir.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        for name in _used_names(node)
        if name in forbidden
    }
    assert found == set()


def _used_names(node: ast.AST) -> list[str]:
    """`discord.ui.button` → `button`; `from discord.ui import DynamicItem` → `DynamicItem`."""
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.ImportFrom):
        return [alias.name for alias in node.names]
    return []
