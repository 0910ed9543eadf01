"""Shared fixtures: the tiny reference checkpoint, one Engine loaded from it for the session, and
a tiny English→Japanese MarianMT folder (`tests/generation/tinymarian.py`); which redis-server
the Redis tests start, in the header and, once they started one, in the summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from generation.pipeline import Engine

# The tiny models gain nothing from intra-op threads, and on a shared CPU torch's spinning
# worker threads make them tens of times slower. Set before torch is first imported (here or
# in a subprocess, which inherits it); an explicit setting wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

TINY_MODEL = Path(__file__).resolve().parent / "reference" / "tiny-pokemon-ja"


def pytest_report_header() -> str:
    from tests.redisprocs import redis_build

    try:
        return f"Redis tests: {redis_build().describe()}"
    except RuntimeError as exc:
        return f"Redis tests: {exc}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.redisprocs import SERVERS_USED, TLS_USED

    for server in SERVERS_USED:
        terminalreporter.write_line(f"Redis tests ran on {server}")
    for way in TLS_USED:
        terminalreporter.write_line(f"Redis TLS tests went through {way}")


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The tiny random-weight checkpoint in the published layout (read-only: copy to change it)."""
    return TINY_MODEL


@pytest.fixture(scope="session")
def tiny_engine(tiny_model: Path) -> Engine:
    """The tiny checkpoint loaded through the real loader, on CPU, safety checker on."""
    from generation.loader import load_engine

    return load_engine(tiny_model, device="cpu", safety_checker=True)


@pytest.fixture(scope="session")
def tiny_marian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight MarianMT translation model folder, built once for the session."""
    from tests.generation.tinymarian import build_tiny_marian

    return build_tiny_marian(tmp_path_factory.mktemp("tiny-marian"))


@pytest.fixture(scope="session")
def tiny_upscaler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight 4x RRDBNet saved as `tiny-x4.pth` (`tests/generation/tinyupscaler.py`)."""
    from tests.generation.tinyupscaler import save_tiny_upscaler

    return save_tiny_upscaler(tmp_path_factory.mktemp("tiny-upscaler") / "tiny-x4.pth")
