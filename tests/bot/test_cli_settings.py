"""Offline subcommands with a bad setting: one line naming the variable, never its value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["tokens", "ピカチュウ"],
        ["generate", "ピカチュウ"],
        ["backup", "copy.sqlite3"],
        ["upscale", "in.png"],
    ],
)
def test_bad_setting_is_one_line_naming_the_variable_without_its_value(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("POKEMON_STEPS", "secret-looking-value")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"pokemon-bot {argv[0]}: invalid setting POKEMON_STEPS: ")
    assert "secret-looking-value" not in err


def test_bad_upscaler_setting_is_one_line_without_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POKEMON_UPSCALER", "secret looking value")
    assert main(["upscale", "in.png"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("pokemon-bot upscale: invalid setting POKEMON_UPSCALER: ")
    assert "neither a local file or folder nor a Hub file" in err
    assert "secret" not in err
