"""The Hub download path end to end, offline: the real loader and huggingface_hub against
a loopback fake of the Hub (`fakehub.py`) serving the tiny checkpoint as `someone/tiny-pokemon-ja`.

Each test gets its own HF_HOME under tmp_path and HF_HUB_OFFLINE=0; huggingface_hub reads its
environment once at import, so the same values are also set on `huggingface_hub.constants`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants

from generation.errors import ModelLoadError
from generation.loader import load_engine, load_tokenizer, resolve_model
from tests.generation.fakehub import FakeHub
from tests.generation.test_pipeline import CASES, TOLERANCE, pixels, reference, request_for

REPO = "someone/tiny-pokemon-ja"
ROOT = Path(__file__).resolve().parents[2]
PROGRESS = re.compile(r"^download (?P<desc>.+): (?P<percent>\d+)%$")
# The names the Hub's default .gitattributes keeps in LFS (served through the fake CDN).
WEIGHTS = {
    "unet": "diffusion_pytorch_model",
    "vae": "diffusion_pytorch_model",
    "text_encoder": "pytorch_model",
    "safety_checker": "pytorch_model",
}
# diffusers and transformers name the safetensors files differently.
SAFETENSORS = {
    "unet/diffusion_pytorch_model.bin": "unet/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.bin": "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/pytorch_model.bin": "text_encoder/model.safetensors",
    "safety_checker/pytorch_model.bin": "safety_checker/model.safetensors",
}


def files_of(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HF_HOME in tmp_path, online, no token: in the environment and in huggingface_hub."""
    home = tmp_path / "hf-home"
    paths = {
        "HF_HOME": home,
        "HF_HUB_CACHE": home / "hub",
        "HF_ASSETS_CACHE": home / "assets",
        "HF_XET_CACHE": home / "xet",
        "HF_TOKEN_PATH": home / "token",
        "HF_STORED_TOKENS_PATH": home / "stored_tokens",
        "AGENT_HARNESSES_PATH": home / ".agent_harnesses.json",
    }
    for name, path in paths.items():
        monkeypatch.setattr(constants, name, str(path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for name in ("HF_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def hub(hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running fake Hub that huggingface_hub talks to (HF_ENDPOINT)."""
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        monkeypatch.setattr(constants, "ENDPOINT", fake.endpoint)
        monkeypatch.setattr(
            constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            fake.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        )
        yield fake


@pytest.fixture
def tiny_hub(hub: FakeHub, tiny_model: Path) -> FakeHub:
    """The fake Hub serving the tiny checkpoint as someone/tiny-pokemon-ja."""
    hub.add_repo(REPO, tiny_model)
    return hub


# -- socket.connect, seen from inside the process ---------------------------------------------

_watchers: list[list[object]] = []  # the connect_attempts lists now recording


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _watchers and event == "socket.connect":
        for attempts in _watchers:
            attempts.append(args[1])


@pytest.fixture
def connect_attempts() -> Iterator[list[object]]:
    """Every address the process tries to connect to while the test runs (an audit hook)."""
    if not getattr(sys, "_pokemon_audit_hook", False):
        sys.addaudithook(_audit)  # hooks cannot be removed: install once, switch with _watchers
        sys._pokemon_audit_hook = True  # type: ignore[attr-defined]
    attempts: list[object] = []
    _watchers.append(attempts)
    try:
        yield attempts
    finally:
        _watchers.remove(attempts)


# -- the first download -----------------------------------------------------------------------


def test_first_resolve_downloads_only_the_wanted_files_into_the_cache(tiny_hub, tiny_model):
    folder = resolve_model(REPO)

    snapshots = Path(constants.HF_HUB_CACHE) / "models--someone--tiny-pokemon-ja" / "snapshots"
    assert folder == (snapshots / tiny_hub.commit(REPO)).resolve()
    downloaded = tiny_hub.downloaded(REPO)
    # Every file of the checkpoint once; not the README or .gitattributes every Hub repo has.
    assert sorted(downloaded) == sorted(files_of(tiny_model))
    assert files_of(folder) == files_of(tiny_model)
    for name in files_of(tiny_model):
        assert (folder / name).read_bytes() == (tiny_model / name).read_bytes(), name
    # The weights came from the CDN the Hub redirected to, the small files from the Hub.
    cdn = {r.path.split("/", 4)[-1] for r in tiny_hub.requests if r.server == "cdn"}
    assert cdn == {f"{c}/{stem}.bin" for c, stem in WEIGHTS.items()} | {"tokenizer/spiece.model"}


def test_first_resolve_logs_file_progress_up_to_100_percent_and_only_at_the_end(tiny_hub, caplog):
    caplog.set_level(logging.INFO, logger="generation.loader")
    resolve_model(REPO)

    lines = [
        PROGRESS.match(r.getMessage())
        for r in caplog.records
        if r.name == "generation.loader" and r.levelno == logging.INFO
    ]
    progress = [(m["desc"], int(m["percent"])) for m in lines if m]
    files = [percent for desc, percent in progress if desc == "Fetching 14 files"]
    assert files == sorted(set(files)), "the file count only goes up, one line per step"
    assert files[-1] == 100
    # 100% is said once, last: the byte counters' totals grow as files start, so an early
    # small file must not look like the end of the download.
    assert [p for p in progress if p[1] == 100] == [("Fetching 14 files", 100)]
    assert progress[-1] == ("Fetching 14 files", 100)


def test_engine_loaded_by_hub_id_generates_the_reference_image(tiny_hub):
    engine = load_engine(REPO, device="cpu")

    assert engine.model == REPO
    assert engine.safety_checker is True
    case = CASES[0]
    assert case["file"] == "case0.png"
    image = pixels(engine.generate([request_for(case)])[0])
    assert np.abs(image - reference(case)).max() <= TOLERANCE


# -- from the cache ---------------------------------------------------------------------------


def test_second_resolve_online_fetches_no_file_again(tiny_hub):
    first = resolve_model(REPO)
    before = len(tiny_hub.downloaded(REPO))

    assert resolve_model(REPO) == first
    assert len(tiny_hub.downloaded(REPO)) == before


def test_offline_with_the_hub_stopped_loads_from_the_cache_without_a_connection(
    tiny_hub, connect_attempts, monkeypatch
):
    folder = resolve_model(REPO)
    tiny_hub.close()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    connect_attempts.clear()

    assert resolve_model(REPO) == folder
    assert load_tokenizer(REPO).encode("漫画の鳥").count == 4
    engine = load_engine(REPO, device="cpu", safety_checker=False)
    assert engine.model == REPO
    assert connect_attempts == []


# -- what is chosen ---------------------------------------------------------------------------


def test_repo_with_safetensors_downloads_only_the_safetensors_weights(hub, tiny_model, tmp_path):
    from safetensors.torch import save_file

    repo = tmp_path / "repo"
    shutil.copytree(tiny_model, repo)
    for bin_name, safetensors_name in SAFETENSORS.items():
        state = torch.load(repo / bin_name, map_location="cpu", weights_only=True)
        save_file({k: v.contiguous() for k, v in state.items()}, repo / safetensors_name)
    hub.add_repo(REPO, repo)  # both formats, like many diffusers repos

    folder = resolve_model(REPO)

    downloaded = set(hub.downloaded(REPO))
    assert not any(name.endswith(".bin") for name in downloaded)
    assert {n for n in downloaded if n.endswith(".safetensors")} == set(SAFETENSORS.values())
    assert downloaded == {n for n in files_of(repo) if not n.endswith(".bin")}
    engine = load_engine(folder, device="cpu")
    case = CASES[0]
    assert np.abs(pixels(engine.generate([request_for(case)])[0]) - reference(case)).max() <= 2


def test_tokenizer_only_downloads_no_weights(tiny_hub):
    assert load_tokenizer(REPO).encode("漫画の鳥").count == 4

    downloaded = set(tiny_hub.downloaded(REPO))
    assert downloaded == {
        "model_index.json",
        "tokenizer/spiece.model",
        "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json",
    }


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["unet/diffusion_pytorch_model.bin", "model_index.json"],
    ids=["weights-on-the-cdn", "config-on-the-hub"],
)
def test_server_error_on_one_file_is_one_model_load_error_line(tiny_hub, caplog, name):
    tiny_hub.fail(REPO, name, 500)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ModelLoadError) as info:
        resolve_model(REPO)

    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"downloading {REPO} failed: ")
    assert "500" in message
    assert name in message
    assert not [r for r in caplog.records if r.exc_info], "nothing logged a traceback"
    assert "Traceback" not in caplog.text


def test_download_after_a_failure_fetches_only_what_is_missing(tiny_hub):
    tiny_hub.fail(REPO, "unet/diffusion_pytorch_model.bin", 500)
    with pytest.raises(ModelLoadError):
        resolve_model(REPO)
    first = set(tiny_hub.downloaded(REPO))
    tiny_hub.heal(REPO, "unet/diffusion_pytorch_model.bin")

    folder = resolve_model(REPO)

    again = tiny_hub.downloaded(REPO)[len(first) :]
    assert again == ["unet/diffusion_pytorch_model.bin"]
    assert (folder / "unet" / "diffusion_pytorch_model.bin").is_file()


# -- the command line, configured by the environment alone ------------------------------------


def run_tokens(hub: FakeHub, hf_home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HOME=str(hf_home), HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="0")
    return subprocess.run(
        [sys.executable, "-m", "bot", "tokens", "漫画の鳥", "--model", REPO],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_tokens_downloads_through_hf_endpoint(tiny_hub, hf_home):
    result = run_tokens(tiny_hub, hf_home)

    assert result.returncode == 0, result.stderr
    assert '"count": 4' in result.stdout
    assert "tokenizer/spiece.model" in tiny_hub.downloaded(REPO)


def test_cli_server_error_is_one_line_without_traceback(tiny_hub, hf_home):
    tiny_hub.fail(REPO, "tokenizer/spiece.model", 500)

    result = run_tokens(tiny_hub, hf_home)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"pokemon-bot tokens: downloading {REPO} failed: ")
    assert "500" in line


# -- the Hub unreachable ----------------------------------------------------------------------


@pytest.fixture
def closed_port() -> str:
    """An endpoint on the loopback where nothing listens: every connection is refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_unreachable_hub_is_asked_once_and_answered_in_one_line(
    hf_home, closed_port, monkeypatch, connect_attempts
):
    monkeypatch.setattr(constants, "ENDPOINT", closed_port)
    with pytest.raises(ModelLoadError) as info:
        resolve_model(REPO)
    message = str(info.value)
    assert message.startswith(f"cannot reach the Hugging Face Hub to download {REPO}")
    assert "\n" not in message
    port = int(closed_port.rsplit(":", 1)[1])
    tries = [a for a in connect_attempts if isinstance(a, tuple) and a[1] == port]
    assert len(tries) == 1, f"the Hub was asked {len(tries)} times (retries)"


@pytest.mark.parametrize("command", ["tokens", "generate"])
def test_cli_with_the_hub_unreachable_prints_one_line_and_no_retries(
    hf_home, closed_port, tmp_path, command
):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HOME=str(hf_home), HF_ENDPOINT=closed_port, HF_HUB_OFFLINE="0")
    args = ["漫画の鳥", "--model", REPO]
    if command == "generate":
        args += ["-o", str(tmp_path / "x.png")]
    result = subprocess.run(
        [sys.executable, "-m", "bot", command, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "Retrying" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"pokemon-bot {command}: cannot reach the Hugging Face Hub")
