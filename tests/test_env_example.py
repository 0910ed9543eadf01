"""`.env.example` and `bot.settings.Settings` stay in step: every setting, nothing extra, defaults parse."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / ".env.example"
_ENTRY = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    value: str
    commented: bool
    comment: str  # the comment lines right above the entry, joined


def entries(text: str) -> list[Entry]:
    found: list[Entry] = []
    comment: list[str] = []
    for line in text.splitlines():
        match = _ENTRY.match(line.strip())
        if match:
            found.append(
                Entry(
                    match["name"],
                    match["value"],
                    bool(match["commented"]),
                    " ".join(comment),
                )
            )
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        else:
            comment = []
    return found


EXAMPLE_ENTRIES = entries(EXAMPLE.read_text("utf-8"))
BY_NAME = {entry.name: entry for entry in EXAMPLE_ENTRIES}
FIELDS = dict(Settings.model_fields)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting comes from the test runner's environment."""
    for name in FIELDS:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)


def default_of(name: str) -> object:
    return FIELDS[name].get_default(call_default_factory=True)


def test_entry_parser_sees_active_and_commented_lines() -> None:
    """The parser below must find both forms, or the other tests could pass on an empty list."""
    parsed = entries("# Doc.\nA_B=1\n\n# More doc.\n# second line\n# C=x y\n# not an entry\n")
    assert parsed == [
        Entry("A_B", "1", False, "Doc."),
        Entry("C", "x y", True, "More doc. second line"),
    ]
    assert len(EXAMPLE_ENTRIES) >= 20


def test_every_setting_is_listed_once_and_nothing_else() -> None:
    names = [entry.name for entry in EXAMPLE_ENTRIES]
    assert len(names) == len(set(names)), "a setting is listed twice"
    assert set(names) == {name.upper() for name in FIELDS}


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_each_setting_has_its_description_as_comment(name: str) -> None:
    description = FIELDS[name].description
    assert description, f"Settings.{name} has no description to document"
    assert description in BY_NAME[name.upper()].comment


def test_only_the_token_is_active_and_it_is_empty() -> None:
    active = [entry for entry in EXAMPLE_ENTRIES if not entry.commented]
    assert [(entry.name, entry.value) for entry in active] == [("DISCORD_TOKEN", "")]


@pytest.mark.usefixtures("clean_env")
def test_the_example_as_copied_gives_every_default() -> None:
    settings = Settings(_env_file=EXAMPLE)  # type: ignore[call-arg]
    for name in FIELDS:
        if name == "discord_token":
            assert settings.discord_token is None or not settings.discord_token.get_secret_value()
        else:
            assert getattr(settings, name) == default_of(name), name


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("name", sorted(set(FIELDS) - {"discord_token"}))
def test_each_listed_value_uncommented_parses_to_the_default(name: str, tmp_path: Path) -> None:
    entry = BY_NAME[name.upper()]
    env_file = tmp_path / ".env"
    env_file.write_text(f"{entry.name}={entry.value}\n", "utf-8")
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert getattr(settings, name) == default_of(name)
