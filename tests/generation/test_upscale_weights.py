"""The upscaler's weights from the Hub, offline: the real resolver and huggingface_hub against the
loopback fake Hub (`fakehub.py`), with HF_HOME in tmp_path (fixtures of `test_hub_download`)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import constants
from PIL import Image

from generation.upscale import UpscaledImage, load_upscaler
from generation.upscale_weights import (
    DEFAULT_UPSCALER,
    PINNED,
    ChecksumMismatchError,
    HubFile,
    LocalWeights,
    UpscalerNotCachedError,
    cached_file,
    check_upscaler,
    parse_upscaler,
    resolve_weights,
    sha256_of,
)
from tests.generation.fakehub import FakeHub
from tests.generation.test_hub_download import (  # noqa: F401 (fixtures)
    connect_attempts,
    hf_home,
    hub,
)

REPO = "someone/upscalers"
NAME = "tiny-x4.pth"
DEFAULT = PINNED[DEFAULT_UPSCALER]


@pytest.fixture
def served(hub: FakeHub, tiny_upscaler: Path, tmp_path: Path) -> HubFile:  # noqa: F811
    """The tiny upscaler served as someone/upscalers/tiny-x4.pth; its source pinned to its bytes."""
    folder = tmp_path / "repo"
    folder.mkdir()
    shutil.copy(tiny_upscaler, folder / NAME)
    commit = hub.add_repo(REPO, folder)
    return HubFile(REPO, NAME, revision=commit, sha256=sha256_of(tiny_upscaler))


@pytest.fixture
def impostor(hub: FakeHub, tiny_upscaler: Path, tmp_path: Path) -> FakeHub:  # noqa: F811
    """The fake Hub serving other bytes (the tiny upscaler) as the default file, at its commit."""
    folder = tmp_path / "impostor"
    folder.mkdir()
    shutil.copy(tiny_upscaler, folder / DEFAULT.filename)
    hub.add_repo(DEFAULT.repo_id, folder, commit=DEFAULT.revision)
    return hub


def test_the_default_is_the_anime_6b_file_pinned_to_a_commit_and_its_published_sha256():
    assert parse_upscaler(DEFAULT_UPSCALER) is DEFAULT
    assert parse_upscaler("") is DEFAULT
    assert (DEFAULT.repo_id, DEFAULT.filename) == (
        "nateraw/real-esrgan",
        "RealESRGAN_x4plus_anime_6B.pth",
    )
    assert DEFAULT.sha256 == "f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da"
    assert DEFAULT.size == 17_938_799
    assert len(DEFAULT.revision) == 40


def test_another_hub_file_follows_main_without_a_pin():
    assert parse_upscaler("someone/else/sub/x4.safetensors") == HubFile(
        "someone/else", "sub/x4.safetensors"
    )


def test_an_existing_local_path_is_local_even_if_it_looks_like_a_hub_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.pth").write_bytes(b"x")
    assert parse_upscaler("a/b/c.pth") == LocalWeights(Path("a/b/c.pth"))


def test_downloaded_once_then_read_from_the_cache_without_the_hub(
    served,
    hub,  # noqa: F811
    connect_attempts,  # noqa: F811
):
    path = resolve_weights(served)
    assert path.is_file()
    assert Path(constants.HF_HUB_CACHE) in path.parents
    assert hub.downloaded(REPO) == [NAME]
    hub.close()
    connect_attempts.clear()
    assert resolve_weights(served) == path
    assert connect_attempts == []


def test_a_pinned_file_loads_and_upscales_through_the_hub_path(served):
    upscaler = load_upscaler(served, device="cpu")
    [result] = upscaler.upscale([Image.new("RGB", (12, 10), (10, 200, 30))])
    assert isinstance(result, UpscaledImage)
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.size == (48, 40)
    assert upscaler.name == "tiny-x4"


def test_a_download_with_the_wrong_sha256_is_refused_and_removed_from_the_cache(served):
    wrong = HubFile(served.repo_id, served.filename, served.revision, sha256="0" * 64)
    with pytest.raises(ChecksumMismatchError, match="not the pinned 0000") as caught:
        resolve_weights(wrong)
    assert "it was not used" in str(caught.value)
    assert cached_file(wrong) is None  # the next start downloads it again
    assert resolve_weights(served).is_file()  # and the right bytes are then taken


def test_the_default_served_with_other_bytes_is_refused_by_its_pinned_sha256(impostor):
    with pytest.raises(ChecksumMismatchError, match=f"not the pinned {DEFAULT.sha256}"):
        load_upscaler(DEFAULT_UPSCALER, device="cpu")
    assert impostor.downloaded(DEFAULT.repo_id) == [DEFAULT.filename]


@pytest.mark.usefixtures("hf_home")
def test_offline_without_the_file_cached_is_one_clear_error(
    monkeypatch,
    connect_attempts,  # noqa: F811
):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UpscalerNotCachedError) as caught:
        load_upscaler(DEFAULT_UPSCALER, device="cpu")
    message = str(caught.value)
    assert message.startswith(
        f"upscaler weights {DEFAULT.repo_id}/{DEFAULT.filename} are not in the Hugging Face cache"
    )
    assert "HF_HUB_OFFLINE is set" in message
    assert "POKEMON_UPSCALER" in message
    assert connect_attempts == []


def test_offline_with_the_file_cached_loads_it(
    served,
    hub,  # noqa: F811
    monkeypatch,
    connect_attempts,  # noqa: F811
):
    resolve_weights(served)
    hub.close()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    connect_attempts.clear()
    assert load_upscaler(served, device="cpu").name == "tiny-x4"
    assert connect_attempts == []


# -- what doctor is told --------------------------------------------------------------------


def test_check_off_is_reported_as_off():
    found = check_upscaler("off")
    assert found.state == "off"
    assert found.detail.startswith("off (POKEMON_UPSCALER=off)")


def test_check_a_good_local_file_names_its_shape(tiny_upscaler):
    found = check_upscaler(str(tiny_upscaler))
    assert found.state == "ready"
    assert found.detail == (f"tiny-x4 (local: {tiny_upscaler}): 4x RRDBNet, 1 blocks, 8 features")


@pytest.mark.usefixtures("hf_home")
def test_check_not_cached_online_says_the_first_upscale_downloads_it_and_asks_nothing(
    connect_attempts,  # noqa: F811
):
    found = check_upscaler(DEFAULT_UPSCALER)
    assert found.state == "not_cached"
    assert "is not cached yet; the first upscale downloads it (18 MB)" in found.detail
    assert connect_attempts == []


@pytest.mark.usefixtures("hf_home")
def test_check_not_cached_offline_is_its_own_state(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert check_upscaler(DEFAULT_UPSCALER).state == "not_cached_offline"


@pytest.mark.usefixtures("impostor")
def test_check_a_cached_default_with_other_bytes_is_broken_and_left_in_place():
    unpinned = HubFile(DEFAULT.repo_id, DEFAULT.filename, DEFAULT.revision)
    path = resolve_weights(unpinned)  # cached, as a damaged copy would be
    found = check_upscaler(DEFAULT_UPSCALER)
    assert found.state == "broken"
    assert f"not the pinned {DEFAULT.sha256}" in found.detail
    assert path.is_file()  # doctor only reads


def test_check_a_file_that_is_no_upscaler_is_broken(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(3))
    (tmp_path / "x.pth").write_bytes((tmp_path / "x.npy").read_bytes())
    found = check_upscaler(str(tmp_path / "x.pth"))
    assert found.state == "broken"
    assert "not a readable weights file" in found.detail
