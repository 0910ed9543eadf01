"""requirements.lock and pyproject.toml agree: every dependency pyproject names is pinned in the
lock at a version inside its range, and the model libraries are capped below a new major."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
REQUIREMENTS = [
    Requirement(text)
    for text in [*PYPROJECT["dependencies"], *PYPROJECT["optional-dependencies"]["test"]]
]


def locked(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"requirements.lock: {raw!r} is not NAME==VERSION"
        assert canonicalize_name(name) not in pins, f"{name} is pinned twice"
        pins[canonicalize_name(name)] = version.strip()
    return pins


LOCK = locked((ROOT / "requirements.lock").read_text("utf-8"))


def test_lock_parser_reads_pins_and_refuses_ranges() -> None:
    assert locked("# c\nFoo_Bar==1.2\n\ntorch==2.13.0  # note\n") == {
        "foo-bar": "1.2",
        "torch": "2.13.0",
    }
    with pytest.raises(AssertionError):
        locked("foo>=1\n")


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=str)
def test_every_dependency_is_locked_inside_its_range(requirement: Requirement) -> None:
    name = canonicalize_name(requirement.name)
    assert name in LOCK, f"{requirement.name} is not in requirements.lock"
    assert requirement.specifier.contains(Version(LOCK[name]), prereleases=True), (
        f"requirements.lock pins {requirement.name}=={LOCK[name]}, outside {requirement}"
    )


@pytest.mark.parametrize("name", ["diffusers", "transformers", "huggingface-hub", "torch"])
def test_model_libraries_are_capped_below_their_next_major(name: str) -> None:
    [requirement] = [r for r in REQUIREMENTS if canonicalize_name(r.name) == name]
    major = Version(LOCK[name]).major
    assert not requirement.specifier.contains(Version(f"{major + 1}.0")), requirement


def test_lock_holds_no_local_build_label_and_not_the_project_itself() -> None:
    assert "+" not in LOCK["torch"], "torch==X+cpu would refuse the CUDA build"
    assert "pokemon-bot" not in LOCK
    assert not [name for name in LOCK if name.startswith("nvidia-")]
