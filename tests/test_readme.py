"""README.md stays true: its two commands, what CI runs, and the configuration reference."""

from __future__ import annotations

import re
from pathlib import Path

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")


def first_code_block() -> list[str]:
    match = re.search(r"```bash\n(.*?)```", README, re.DOTALL)
    assert match, "README.md has no bash block"
    return [line.split("#")[0].strip() for line in match.group(1).splitlines() if line.strip()]


def test_readme_opens_with_the_run_and_test_commands() -> None:
    assert README.index("```bash") < README.index("## "), "the commands must come first"
    assert first_code_block() == ["pokemon-bot run", "python -m pytest -q"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    test_command = first_code_block()[1]
    assert ci[-1].strip() == test_command
    assert "pip install -q torch==2.13.0" in "\n".join(ci)


def test_configuration_reference_lists_every_setting() -> None:
    table = README[README.index("## Configuration reference") :]
    table = table[: table.index("\n## ")]
    listed = set(re.findall(r"^\| `([A-Z_]+)` \|", table, re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


def test_the_example_image_exists() -> None:
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / target).is_file(), target
