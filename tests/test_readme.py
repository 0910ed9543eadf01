"""README.md stays true: its two commands, that CI runs the second itself, and the
configuration reference. (tests/test_bootstrap.py runs the two commands from a clean copy.)"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")
CI = (ROOT / ".ci" / "run").read_text("utf-8")


def code_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, re.DOTALL)


def commands(block: str) -> list[str]:
    """The commands of a shell block: comments and blank lines dropped."""
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def ci_commands() -> list[str]:
    return [line for line in commands(CI) if not line.startswith(("set ", "cd ", "export "))]


def test_readme_opens_with_exactly_the_run_and_test_commands() -> None:
    assert README.index("```bash") < README.index("\n## "), "the commands must come first"
    assert commands(code_blocks()[0]) == ["./pokemon-bot run", "./pokemon-bot test"]


def test_the_commands_exist_and_are_executable() -> None:
    for command in commands(code_blocks()[0]):
        program = ROOT / shlex.split(command)[0]
        assert program.is_file(), program
        assert os.access(program, os.X_OK), (
            f"{program} is not executable (git update-index --chmod=+x)"
        )
    assert (ROOT / "scripts" / "bootstrap.py").is_file()


def test_ci_runs_the_readme_test_command_itself_last() -> None:
    test_command = commands(code_blocks()[0])[1]
    assert ci_commands()[-1] == test_command


def test_ci_sets_up_through_the_readme_front_end_not_its_own_pip_lines() -> None:
    assert "./pokemon-bot setup --test" in ci_commands()
    assert not [line for line in ci_commands() if "pip install" in line], "CI re-implements set-up"
    for tool in ("ruff check .", "ruff format --check .", "hadolint Dockerfile", "pyright"):
        assert any(tool in line.replace('"', "") for line in ci_commands()), tool


def test_ci_installs_nothing_outside_the_venv() -> None:
    """The tests need only Python: no apt (redis-server, openssl), no npm (pyright is the test
    extra's, with its own Node.js), so a fresh machine runs .ci/run as it runs the README."""
    for line in ci_commands():
        for tool in ("apt-get", "apt ", "npm", "brew"):
            assert tool not in line, line
    assert any(line.startswith('"$bin/pyright"') for line in ci_commands())


def test_readme_documents_the_torch_choice_and_the_lock() -> None:
    for text in ("POKEMON_TORCH", "`cuda`", "`cpu`", "`default`", "requirements.lock"):
        assert text in README, text


def test_configuration_reference_lists_every_setting() -> None:
    table = README[README.index("## Configuration reference") :]
    table = table[: table.index("\n## ")]
    listed = set(re.findall(r"^\| `([A-Z_]+)` \|", table, re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


def test_the_example_image_exists() -> None:
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / target).is_file(), target


def test_backup_example_works_as_written() -> None:
    """The README's backup line names a folder with a trailing slash: `backup` makes it."""
    assert "pokemon-bot backup backups/" in README
