"""Where a model's files come from: a local folder or a Hugging Face Hub id, and how they are read.

The one place for what the model loader (`generation.loader`), the translator
(`generation.translate`) and the tokenizer share: which text is a Hub id, the order a source is
resolved in (an existing folder, else a Hub id, else an error), the Hub's refusals as one line
an operator can act on (`HubError` with its `reason`), the switch that quiets diffusers' and
transformers' chatter while loading, and reading a JSON config file. A leaf: it imports nothing
of `generation/` but its errors, so whoever loads may import it without a circle.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, cast

from generation.errors import ModelLoadError, one_line

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(text: str) -> bool:
    """Whether `text` names a Hub model (`owner/name`); anything else is a local folder."""
    return not text.startswith((".", "/", "~")) and "\\" not in text and bool(_HUB_ID.match(text))


def resolve(
    source: str | Path,
    *,
    what: str,
    setting: str,
    check_folder: Callable[[Path], Path],
    from_hub: Callable[[str], Path],
) -> Path:
    """The folder `source` names: an existing path (`check_folder` says whether it is one of
    `what`), else a Hub id (`from_hub` downloads it or finds it in the cache), else a one-line
    `ModelLoadError`. `setting` is the environment variable an operator sets to choose it."""
    text = str(source).strip()
    if not text:
        raise ModelLoadError(f"no {what} given: set {setting} to a Hub id or a local folder")
    path = Path(text).expanduser()
    if path.exists():
        return check_folder(path)
    if not is_hub_id(text):
        raise ModelLoadError(f"{what} folder {text} does not exist")
    return from_hub(text)


class HubError(ModelLoadError):
    """The Hub refused or could not be asked: `reason` is unreachable, unknown, gated or invalid."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def hub_error(repo_id: str, exc: BaseException) -> HubError:
    """What an error of huggingface_hub (listing or downloading `repo_id`) means, in one line.

    Anything but a refusal (network errors come from several libraries) is `unreachable`."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, HFValidationError):
        return HubError(f"{repo_id!r} is neither a local folder nor a valid Hub id", "invalid")
    if isinstance(exc, GatedRepoError):  # a subclass of RepositoryNotFoundError: first
        return HubError(
            f"{repo_id} is gated on the Hugging Face Hub: accept its license and log in "
            "(HF_TOKEN) first",
            "gated",
        )
    if isinstance(exc, RepositoryNotFoundError | RevisionNotFoundError):
        return HubError(
            f"unknown Hub model id {repo_id} (and no local folder of that name); "
            "check the spelling, or log in (HF_TOKEN) if it is private",
            "unknown",
        )
    return HubError(one_line(exc), "unreachable")


def hub_timeout() -> float:
    """Seconds to wait for the Hub's answer: huggingface_hub's own HF_HUB_ETAG_TIMEOUT (10 s)."""
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT)


def hub_files(repo_id: str) -> list[str]:
    """The files of `repo_id` on the Hub, asked once: no retries, so an unreachable Hub answers
    within `hub_timeout()` (huggingface_hub's listing retries five times, about 24 s).
    Raises `HubError`."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(repo_id, timeout=hub_timeout())
    except Exception as exc:
        raise hub_error(repo_id, exc) from exc
    return [sibling.rfilename for sibling in info.siblings or []]


def read_json(
    path: Path, *, required: bool = False, error: type[Exception] = ModelLoadError
) -> dict[str, Any]:
    """The JSON object at `path`: `{}` when the file is absent and not `required`; otherwise
    `error` (one line) when it is absent, unreadable or not an object."""
    if not path.is_file():
        if not required:
            return {}
        raise error(f"{path.parent} is missing {path.name}")
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise error(f"cannot read {path}: {one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise error(f"{path} is not a JSON object")
    # `isinstance` narrows json's Any only to dict[Unknown, Unknown]; JSON keys are strings.
    return cast("dict[str, Any]", data)


@contextlib.contextmanager
def quiet_libraries() -> Generator[None]:
    """Silence diffusers/transformers chatter (progress bars, deprecation notes) while loading."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    d_level, t_level = dlog.get_verbosity(), tlog.get_verbosity()
    d_bars, t_bars = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        dlog.set_verbosity(d_level)
        tlog.set_verbosity(t_level)
        if d_bars:
            dlog.enable_progress_bar()
        if t_bars:
            tlog.enable_progress_bar()
