"""`pokemon-bot translate`, run for real in a subprocess with a tiny MarianMT model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generation.translate import load_translator
from tests.generation.tinymarian import build_tiny_marian
from tests.test_cli_generation import assert_one_line_error, run_cli

ENGLISH = "a fire dragon with blue wings"


@pytest.fixture(scope="module")
def marian_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_marian(tmp_path_factory.mktemp("tiny-marian"))


def test_prints_the_translation_and_its_token_count(marian_folder, tiny_model, tmp_path):
    done = run_cli(
        "translate",
        ENGLISH,
        "--translate-model",
        str(marian_folder),
        "--model",
        str(tiny_model),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    expected = load_translator(marian_folder).translate(ENGLISH)
    assert done.stdout == expected + "\n"
    assert done.stderr.startswith(f"translated from English by {marian_folder}; ")
    assert " of 77 tokens" in done.stderr


def test_japanese_prompt_is_printed_unchanged_without_loading_a_model(tmp_path, tiny_model):
    done = run_cli(
        "translate",
        "Pikachu の RPG イラスト",
        "--translate-model",
        str(tmp_path / "no-such-model"),
        "--model",
        str(tiny_model),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Pikachu の RPG イラスト\n"
    assert done.stderr.startswith("left as is: it has Japanese characters; 18 of 77 tokens")


def test_translate_off_in_the_settings_prints_the_english(tmp_path, marian_folder):
    (tmp_path / ".env").write_text(
        f"POKEMON_TRANSLATE=off\nPOKEMON_TRANSLATE_MODEL={marian_folder}\n", "utf-8"
    )
    done = run_cli("translate", ENGLISH, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ENGLISH + "\n"
    assert done.stderr.startswith("left as is: POKEMON_TRANSLATE is off")


def test_the_model_from_the_settings_is_used(tmp_path, marian_folder):
    (tmp_path / ".env").write_text(f"POKEMON_TRANSLATE_MODEL={marian_folder}\n", "utf-8")
    done = run_cli("translate", ENGLISH, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == load_translator(marian_folder).translate(ENGLISH) + "\n"
    # The image model's tokenizer is not cached here: the count is missing, the answer is not.
    assert "token count unavailable" in done.stderr


def test_missing_model_is_one_line_without_traceback(tmp_path):
    done = run_cli(
        "translate", ENGLISH, "--translate-model", str(tmp_path / "no-such-model"), cwd=tmp_path
    )
    line = assert_one_line_error(done, "translate")
    assert "no-such-model does not exist" in line


def test_uncached_hub_model_offline_is_one_line(tmp_path):
    done = run_cli("translate", ENGLISH, cwd=tmp_path)
    line = assert_one_line_error(done, "translate")
    assert "staka/fugumt-en-ja is not in the Hugging Face cache" in line


def test_empty_prompt_is_one_line(tmp_path):
    assert "the prompt is empty" in assert_one_line_error(
        run_cli("translate", "  ", cwd=tmp_path), "translate"
    )


def test_importing_the_command_loads_neither_discord_nor_torch():
    code = (
        "import sys, bot.commands_cli.translate; "
        "print(sorted(m for m in ('discord', 'torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
