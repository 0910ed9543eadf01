"""Refresh the vendored copy of Discord's OpenAPI description from GitHub.

    python -m tests.fakediscord.spec.refresh            # the newest commit on main
    python -m tests.fakediscord.spec.refresh 74fda0f    # a commit (short or full), tag or branch

Resolves the reference to a full commit id (GitHub's API), downloads `specs/openapi.json` of
`discord/discord-api-spec` at that commit (raw.githubusercontent.com), checks it is an OpenAPI
3.1 document the fake can use, and replaces `openapi.json` and `source.json` here atomically
(a temporary file in the same folder, then `os.replace`): an interrupted or refused refresh
leaves the old copy as it was. Then run `tests/fakediscord/` and the end-to-end tests: a
change in Discord's spec may refuse what the bot sends.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .validator import SNOWFLAKE

REPOSITORY = "discord/discord-api-spec"
SPEC_PATH = "specs/openapi.json"
LICENSE = "MIT"
API_BASE = "https://api.github.com"
RAW_BASE = "https://raw.githubusercontent.com"
HERE = Path(__file__).resolve().parent
FULL_COMMIT = re.compile(r"^[0-9a-f]{40}$")
TIMEOUT = 60.0
USER_AGENT = "pokemon-bot-spec-refresh"


def resolve_commit(ref: str, *, api_base: str = API_BASE) -> str:
    """The full commit id `ref` (a branch, tag or short id) names in the repository."""
    if FULL_COMMIT.match(ref):
        return ref
    quoted = urllib.parse.quote(ref, safe="")
    request = urllib.request.Request(
        f"{api_base}/repos/{REPOSITORY}/commits/{quoted}",
        headers={"Accept": "application/vnd.github.sha", "User-Agent": USER_AGENT},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        commit = response.read().decode("ascii").strip()
    if not FULL_COMMIT.match(commit):
        raise ValueError(f"GitHub did not answer a commit id for {ref!r}: {commit[:80]!r}")
    return commit


def download(commit: str, *, raw_base: str = RAW_BASE) -> bytes:
    """`specs/openapi.json` at `commit`, as bytes."""
    request = urllib.request.Request(
        f"{raw_base}/{REPOSITORY}/{commit}/{SPEC_PATH}", headers={"User-Agent": USER_AGENT}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return response.read()


def check_document(data: bytes) -> dict[str, Any]:
    """The parsed document, or ValueError if it is not an OpenAPI 3.1 description with the
    parts the fake relies on (paths, and the snowflake schema it widens)."""
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError("not an OpenAPI document: the top level is not an object")
    version = str(document.get("openapi", ""))
    if not version.startswith("3.1"):
        raise ValueError(f"not an OpenAPI 3.1 document (openapi: {version or 'missing'})")
    if not isinstance(document.get("paths"), dict) or not document["paths"]:
        raise ValueError("the document has no paths")
    schemas = document.get("components", {}).get("schemas", {})
    if SNOWFLAKE not in schemas:
        raise ValueError(f"the document has no components.schemas.{SNOWFLAKE}")
    return document


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step: readers see the old file or the new one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def refresh(
    ref: str = "main",
    *,
    directory: Path = HERE,
    api_base: str = API_BASE,
    raw_base: str = RAW_BASE,
) -> dict[str, str]:
    """Download the spec at `ref` into `directory`; returns what `source.json` now says."""
    commit = resolve_commit(ref, api_base=api_base)
    data = download(commit, raw_base=raw_base)
    check_document(data)
    source = {
        "repository": REPOSITORY,
        "path": SPEC_PATH,
        "commit": commit,
        "sha256": hashlib.sha256(data).hexdigest(),
        "license": LICENSE,
    }
    write_atomically(directory / "openapi.json", data)
    write_atomically(
        directory / "source.json", (json.dumps(source, indent=2) + "\n").encode("utf-8")
    )
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakediscord.spec.refresh",
        description=(__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument(
        "ref", nargs="?", default="main", help="commit, tag or branch (default: main)"
    )
    args = parser.parse_args(argv)
    source = refresh(args.ref)
    print(f"openapi.json is now {source['repository']} {source['path']} at {source['commit']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
