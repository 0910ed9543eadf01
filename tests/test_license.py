"""The project's license: the MIT text, the PEP 639 fields that put it into the package's
metadata (what `pip show` prints), and THIRD_PARTY.md naming the licenses of what the bot
downloads and serves."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_LICENSE_URL = "https://huggingface.co/spaces/CompVis/stable-diffusion-license"


def test_the_license_is_mit_with_its_copyright_line() -> None:
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the pokemon-bot authors" in text
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_pyproject_declares_the_license_as_a_pep_639_expression() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    project = pyproject["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    # License classifiers are not allowed next to an expression (setuptools refuses them).
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]
    assert "setuptools>=77" in pyproject["build-system"]["requires"]


def test_the_built_package_carries_the_license_in_its_metadata(tmp_path: Path) -> None:
    """What the image's install does (pyproject, README, LICENSE and the code, nothing else):
    the wheel's METADATA is what `pip show` reads (`License-Expression: MIT`)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for package in ("bot", "generation", "storage"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        timeout=240,
    )
    [wheel] = out.glob("pokemon_bot-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
        dist_info = metadata_name.rsplit("/", 1)[0]
        assert f"{dist_info}/licenses/LICENSE" in names
        shipped = archive.read(f"{dist_info}/licenses/LICENSE").decode()
    assert metadata["License-Expression"] == "MIT"
    assert metadata["License-File"] == "LICENSE"
    assert shipped == (ROOT / "LICENSE").read_text("utf-8")


def test_third_party_names_the_models_license_and_its_use_restrictions() -> None:
    text = (ROOT / "THIRD_PARTY.md").read_text("utf-8")
    assert "svjack/Stable-Diffusion-Pokemon-ja" in text
    assert "CreativeML OpenRAIL-M" in text
    assert MODEL_LICENSE_URL in text
    # Attachment A, summarised: a few of its restrictions, by their subject.
    for subject in ("minors", "harass", "medical advice", "law enforcement"):
        assert subject in text, subject


def test_third_party_names_the_translator_upscaler_test_data_and_spec_licenses() -> None:
    text = (ROOT / "THIRD_PARTY.md").read_text("utf-8")
    for needle in (
        "staka/fugumt-en-ja",
        "CC BY-SA 4.0",
        "RealESRGAN_x4plus_anime_6B",
        "BSD-3-Clause",
        "tests/reference/",
        "discord/discord-api-spec",
    ):
        assert needle in text, needle


def test_third_party_lists_every_runtime_dependency() -> None:
    """Each dependency of pyproject.toml has a row in the table (by its distribution name)."""
    text = (ROOT / "THIRD_PARTY.md").read_text("utf-8").lower()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    missing = []
    for requirement in pyproject["project"]["dependencies"]:
        name = requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
        if name.lower() not in text:
            missing.append(name)
    assert missing == []
