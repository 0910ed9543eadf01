"""Where the upscaler's weights come from: `POKEMON_UPSCALER`, resolved to one checked file.

The setting is one of:

- unset: `RealESRGAN_x4plus_anime_6B.pth` from the Hugging Face Hub (`DEFAULT_UPSCALER`), at a
  pinned commit, downloaded once into the Hub cache and checked against its published SHA-256;
- `owner/name/path/file.pth`: another file on the Hub (the latest commit of `main`);
- a local `.pth`/`.safetensors` file, or a folder holding exactly one such file;
- `off`: no upscaler.

Resolving honours `HF_HUB_OFFLINE` (the cache only) and never asks the Hub for a file that is
already cached. `check_upscaler` is what `pokemon-bot doctor` shows: it never downloads. No torch
here; checking the file's architecture is `generation.upscale_arch`'s job.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from generation.errors import ModelLoadError, one_line

log = logging.getLogger(__name__)

# The published file is the GitHub release asset of xinntao/Real-ESRGAN v0.2.2.4; the Hub copy
# below is the same bytes (its LFS pointer's sha256 and size are those of the release asset).
DEFAULT_UPSCALER = "nateraw/real-esrgan/RealESRGAN_x4plus_anime_6B.pth"
WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")
_HUB_FILE = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)/(?P<file>[\w./-]+)$")
_OFF = frozenset({"off", "none", "no", "false", "0"})


@dataclass(frozen=True, slots=True)
class HubFile:
    """One file of a Hub repository, optionally pinned to a commit and a SHA-256."""

    repo_id: str
    filename: str
    revision: str = "main"
    sha256: str | None = None
    size: int | None = None  # bytes, when known: said in doctor's "will download" line


@dataclass(frozen=True, slots=True)
class LocalWeights:
    """A local weights file, or a folder expected to hold exactly one."""

    path: Path


UpscalerSource = HubFile | LocalWeights

# Files whose bytes are known: the Hub path → (commit, sha256, size). The commit is the one
# that added the file to nateraw/real-esrgan; the checksum and size are those published for the
# release asset RealESRGAN_x4plus_anime_6B.pth (v0.2.2.4), which the Hub's LFS pointer repeats.
PINNED: dict[str, HubFile] = {
    DEFAULT_UPSCALER: HubFile(
        "nateraw/real-esrgan",
        "RealESRGAN_x4plus_anime_6B.pth",
        revision="177e91fe6548d7713c59b539b719505b497319fa",
        sha256="f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da",
        size=17_938_799,
    ),
}


class UpscalerLoadError(ModelLoadError):
    """The upscaler's weights cannot be had: one line an operator can act on."""


class ChecksumMismatchError(UpscalerLoadError):
    """A file's SHA-256 is not the pinned one."""


class UpscalerNotCachedError(UpscalerLoadError):
    """A Hub file not in the cache, where downloading is not allowed."""


def parse_upscaler(text: str) -> UpscalerSource | None:
    """The source `POKEMON_UPSCALER` names, or None for `off`.

    An existing local path wins over a Hub reading of the same text; text that looks like a
    path (`/`, `.`, `~`) but does not exist, or that names no weights file, is an error.
    """
    value = text.strip()
    if value.lower() in _OFF:
        return None
    if not value:
        return PINNED[DEFAULT_UPSCALER]
    path = Path(value).expanduser()
    if path.exists() or value.startswith((".", "/", "~")) or "\\" in value:
        return LocalWeights(path)
    match = _HUB_FILE.match(value)
    if match is None or not value.lower().endswith(WEIGHT_SUFFIXES):
        # The value is not repeated: it could be a secret pasted into the wrong setting.
        raise UpscalerLoadError(
            "the upscaler is neither a local file or folder nor a Hub file (owner/name/file.pth, "
            f"ending in {', '.join(WEIGHT_SUFFIXES)}); off turns it off (default {DEFAULT_UPSCALER})"
        )
    return PINNED.get(value) or HubFile(match.group("repo"), match.group("file"))


def resolve_weights(source: UpscalerSource, *, download: bool = True) -> Path:
    """The checked weights file of `source`: a local file, or a Hub file from the cache
    (downloaded first when it is not there, unless `download` is False or HF_HUB_OFFLINE)."""
    if isinstance(source, LocalWeights):
        return _local_file(source.path)
    return _hub_file(source, download=download)


def _local_file(path: Path) -> Path:
    if not path.exists():
        raise UpscalerLoadError(f"upscaler weights {path} do not exist")
    if path.is_dir():
        found = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES
        )
        if len(found) != 1:
            listed = ", ".join(p.name for p in found) or "none"
            raise UpscalerLoadError(
                f"upscaler folder {path} must hold exactly one weights file "
                f"({', '.join(WEIGHT_SUFFIXES)}); it holds {listed}: name the file instead"
            )
        path = found[0]
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise UpscalerLoadError(
            f"upscaler weights {path} are not a {', '.join(WEIGHT_SUFFIXES)} file"
        )
    return path.resolve()


def cached_file(source: HubFile) -> Path | None:
    """The file in the local Hub cache at the source's revision, without any network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source.repo_id, source.filename, revision=source.revision)
    return Path(found) if isinstance(found, str) else None


def _hub_file(source: HubFile, *, download: bool) -> Path:
    from huggingface_hub import constants

    where = f"{source.repo_id}/{source.filename}"
    cached = cached_file(source)
    if cached is not None:
        verify_sha256(cached, source)
        return cached
    if not download or constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "downloading was not asked"
        raise UpscalerNotCachedError(
            f"upscaler weights {where} are not in the Hugging Face cache "
            f"({constants.HF_HUB_CACHE}) and {why}; download them once online, or set "
            "POKEMON_UPSCALER to a local file (or off)"
        )
    from huggingface_hub import hf_hub_download  # pyright: ignore[reportUnknownVariableType]

    from generation.loader import _logging_tqdm  # pyright: ignore[reportPrivateUsage]

    log.info("downloading upscaler weights %s", where)
    started = time.monotonic()
    try:
        path = Path(
            hf_hub_download(
                source.repo_id,
                source.filename,
                revision=source.revision,
                tqdm_class=_logging_tqdm(),
            )
        )
    except Exception as exc:  # network, HTTP and disk errors come from several libraries
        raise UpscalerLoadError(
            f"downloading upscaler weights {where} failed: {one_line(exc)}"
        ) from exc
    try:
        verify_sha256(path, source)
    except ChecksumMismatchError:
        _evict(path)  # so that the next start downloads it again instead of refusing for ever
        raise
    log.info("upscaler weights %s ready in %s (%.1fs)", where, path, time.monotonic() - started)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, source: HubFile) -> None:
    """Raise `ChecksumMismatchError` unless `path` has the source's pinned SHA-256 (if any)."""
    if source.sha256 is None:
        return
    found = sha256_of(path)
    if found != source.sha256.lower():
        raise ChecksumMismatchError(
            f"upscaler weights {source.repo_id}/{source.filename} have SHA-256 {found}, not "
            f"the pinned {source.sha256}: the file is damaged or was replaced; it was not used"
        )


def _evict(path: Path) -> None:
    """Remove a downloaded file from the Hub cache: the snapshot link and the blob it points at."""
    try:
        blob = path.resolve()
        path.unlink(missing_ok=True)
        if blob != path:
            blob.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the rejected file %s: %s", path, one_line(exc))


# --- what `pokemon-bot doctor` asks -----------------------------------------------------------

UpscalerState = Literal[
    "off",  # POKEMON_UPSCALER=off
    "ready",  # a local file or a cached Hub file, checksum (when pinned) and architecture fine
    "not_cached",  # a Hub file not cached yet: downloaded at first use (online)
    "not_cached_offline",  # a Hub file not cached, and HF_HUB_OFFLINE forbids downloading it
    "broken",  # missing, wrong checksum, not a 4x image model, bad setting
]


@dataclass(frozen=True, slots=True)
class UpscalerCheck:
    """One line on the upscaler for an operator, found without downloading anything."""

    state: UpscalerState
    detail: str


def check_upscaler(text: str) -> UpscalerCheck:
    """Whether `POKEMON_UPSCALER=text` is usable: the file present (in the cache or on disk),
    its checksum when pinned, and that it is a 4x Real-ESRGAN model. Never downloads."""
    from huggingface_hub import constants

    try:
        source = parse_upscaler(text)
    except UpscalerLoadError as exc:
        return UpscalerCheck("broken", str(exc))
    if source is None:
        return UpscalerCheck("off", "off (POKEMON_UPSCALER=off): pictures are not upscaled")
    try:
        path = resolve_weights(source, download=False)
    except UpscalerNotCachedError as exc:
        if constants.HF_HUB_OFFLINE:
            return UpscalerCheck("not_cached_offline", str(exc))
        assert isinstance(source, HubFile)  # only Hub files can be missing from the cache
        size = f" ({source.size / 1e6:.0f} MB)" if source.size else ""
        return UpscalerCheck(
            "not_cached",
            f"{source.repo_id}/{source.filename} is not cached yet; the first upscale downloads "
            f"it{size} into {constants.HF_HUB_CACHE}",
        )
    except UpscalerLoadError as exc:
        return UpscalerCheck("broken", str(exc))
    from generation.upscale_arch import load_network

    try:
        _, shape = load_network(path)
    except ModelLoadError as exc:
        return UpscalerCheck("broken", str(exc))
    pinned = ", SHA-256 as pinned" if isinstance(source, HubFile) and source.sha256 else ""
    where = f"cached in {constants.HF_HUB_CACHE}" if isinstance(source, HubFile) else "local"
    return UpscalerCheck(
        "ready",
        f"{path.stem} ({where}: {path}{pinned}): {shape.scale}x RRDBNet, "
        f"{shape.blocks} blocks, {shape.features} features",
    )
