"""Install the carried wheels on the CUDA machine, offline (called by run.py, or on its own).

    python3 bench/gpu/install.py [--plan]

A wheel is installed when its package is missing there or older (the image's own newer
typing-extensions or zipp stay). They go into the interpreter's own site-packages, so that
subprocesses (pytest, tests that start `python -m bot`) see them too; where that is not
writable, into /tmp/pokemon-site, put first on sys.path and PYTHONPATH.
Then every carried wheel's requirements are checked against what is installed, as warnings.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import importlib
import importlib.metadata
import os
import subprocess
from collections.abc import Sequence
from typing import Any

from bench.gpu.wheels import WHEEL_DIR, normalize, parse_wheel_name, requires_dist, wheels

FALLBACK_TARGET = Path("/tmp/pokemon-site")
PIP = ["-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
       "--disable-pip-version-check", "--upgrade"]  # fmt: skip


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _older(installed: str, carried: str) -> bool:
    try:
        from packaging.version import Version

        return Version(installed) < Version(carried)
    except Exception:  # no packaging, or an odd version: carry ours unless it is the same
        return installed != carried


def plan(folder: Path = WHEEL_DIR) -> tuple[list[Path], dict[str, str]]:
    """(wheels to install, {package: version kept because the machine's is as new or newer})."""
    chosen: list[Path] = []
    kept: dict[str, str] = {}
    for path in wheels(folder):
        name, version = parse_wheel_name(path)
        have = installed_version(name)
        if have is None or _older(have, version):
            chosen.append(path)
        else:
            kept[name] = have
    return chosen, kept


def install(folder: Path = WHEEL_DIR, *, dry_run: bool = False) -> dict[str, Any]:
    """Install what `plan` chose; a summary for the results (raises RuntimeError on failure)."""
    if not wheels(folder):
        raise RuntimeError(
            f"no wheels in {folder}: run `python bench/gpu/prepare.py` where PyPI is reachable "
            'and carry ".whl"'
        )
    chosen, kept = plan(folder)
    summary: dict[str, Any] = {
        "wheels": [p.name for p in chosen],
        "kept": kept,
        "mode": "plan only" if dry_run else "site-packages",
    }
    if not dry_run and chosen:
        files = [str(p) for p in chosen]
        result = subprocess.run(
            [sys.executable, *PIP, *files], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            print(
                "installing into site-packages failed; using "
                f"{FALLBACK_TARGET}: {result.stderr.strip()[-300:]}",
                flush=True,
            )
            result = subprocess.run(
                [sys.executable, *PIP, "--target", str(FALLBACK_TARGET), *files],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"pip install failed: {result.stderr.strip()[-500:]}")
            sys.path.insert(0, str(FALLBACK_TARGET))
            paths = [str(FALLBACK_TARGET), os.environ.get("PYTHONPATH", "")]
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
            summary["mode"] = f"--target {FALLBACK_TARGET} (PYTHONPATH)"
        importlib.invalidate_caches()
    summary["warnings"] = check_requirements(folder)
    return summary


def check_requirements(folder: Path = WHEEL_DIR) -> list[str]:
    """Each carried wheel's requirement that the installed packages do not meet."""
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:
        return ["packaging is not installed: requirements not checked"]
    warnings: list[str] = []
    for path in wheels(folder):
        owner, _ = parse_wheel_name(path)
        for line in requires_dist(path):
            try:
                requirement = Requirement(line)
                if requirement.marker is not None and not requirement.marker.evaluate(
                    {"extra": ""}
                ):
                    continue
            except Exception:
                continue
            have = installed_version(requirement.name)
            if have is None:
                warnings.append(
                    f"{owner} needs {requirement}: {normalize(requirement.name)} missing"
                )
            elif requirement.specifier and not requirement.specifier.contains(
                Version(have), prereleases=True
            ):
                warnings.append(f"{owner} needs {requirement}: {have} is installed")
    return warnings


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        summary = install(dry_run="--plan" in args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(summary['wheels'])} wheels installed ({summary['mode']}); kept {summary['kept']}")
    for warning in summary["warnings"]:
        print(f"warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
