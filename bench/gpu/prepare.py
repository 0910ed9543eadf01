"""Prepare the GPU check here: download the wheels the CUDA machine lacks into `.whl/`.

    python bench/gpu/prepare.py            # download (PyPI), then check
    python bench/gpu/prepare.py --check    # only check what is in .whl/

The CUDA machine has no network and Python 3.12 with torch, transformers and the usual
scientific stack, but not diffusers, discord.py, aiosqlite, pydantic(-settings) and a few of
their needs (`wheels.CARRIED`). Each is fetched as a Python 3.12 manylinux x86-64 wheel at the
version installed here (the tested one). The check: one wheel per package, every requirement
(for Python 3.12 on Linux) met by a carried wheel or by the image's package list, the total
under 40 MiB, and pip installing them all into a scratch folder for Python 3.12.
Exit status 0 when ready, 1 with one line per problem.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import importlib.metadata
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence

from bench.gpu.wheels import (
    CARRIED,
    DEVICE_PACKAGES,
    DEVICE_VERSIONS,
    MAX_BYTES,
    PYTHON_VERSION,
    ROOT,
    WHEEL_DIR,
    normalize,
    parse_wheel_name,
    requires_dist,
    wheels,
)

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import Version
except ImportError:  # pip always carries a copy
    from pip._vendor.packaging.requirements import (  # type: ignore[no-redef]
        InvalidRequirement,
        Requirement,
    )
    from pip._vendor.packaging.version import Version  # type: ignore[no-redef]

# pip matches manylinux tags exactly: list the ones binary wheels are published under.
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
TARGET = ["--python-version", PYTHON_VERSION, "--implementation", "cp", "--only-binary=:all:"]
for _platform in PLATFORMS:
    TARGET += ["--platform", _platform]
# The CUDA machine's environment, for requirement markers.
MARKERS = {
    "python_version": PYTHON_VERSION,
    "python_full_version": PYTHON_VERSION + ".3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def wanted_versions() -> dict[str, str]:
    """name → version: what is installed here, else the pin in `CARRIED`."""
    versions = {}
    for name, pin in CARRIED.items():
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = pin
    return versions


def download(folder: Path, versions: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    specs = [f"{name}=={version}" for name, version in versions.items()]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "-q",
        *TARGET,
        "-d",
        str(folder),
    ]
    print(f"downloading {len(specs)} wheels for Python {PYTHON_VERSION} into {folder} …")
    result = subprocess.run([*command, *specs], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        raise PrepareError(
            "pip download failed: " + (errors[-1] if errors else result.stderr.strip()[-300:])
        )


def remove_stale(folder: Path, versions: dict[str, str]) -> list[str]:
    """Delete carried packages' wheels of other versions (two versions stop the install)."""
    wanted = {normalize(name): version for name, version in versions.items()}
    removed = []
    for path in wheels(folder):
        name, version = parse_wheel_name(path)
        if name in wanted and version != wanted[name]:
            path.unlink()
            removed.append(path.name)
    return removed


def requirements(path: Path) -> list[Requirement]:
    """The wheel's Requires-Dist entries that apply on the CUDA machine (no extras)."""
    found = []
    for line in requires_dist(path):
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate(MARKERS):
            found.append(requirement)
    return found


def check(folder: Path, versions: dict[str, str]) -> list[str]:
    """Every problem with the wheels in `folder`, one line each (empty: ready)."""
    problems: list[str] = []
    shipped: dict[str, str] = {}
    files = wheels(folder)
    for path in files:
        name, version = parse_wheel_name(path)
        if name in shipped:
            problems.append(f"two versions of {name}: {shipped[name]} and {version}")
        shipped[name] = version
    for name, version in versions.items():
        if shipped.get(normalize(name)) != version:
            problems.append(f"{name}=={version} is missing from {folder}")
    for path in files:
        owner, _ = parse_wheel_name(path)
        for requirement in requirements(path):
            name = normalize(requirement.name)
            have = shipped.get(name) or DEVICE_VERSIONS.get(name)
            if have is None:
                if name not in DEVICE_PACKAGES:
                    problems.append(f"{owner} needs {requirement}, neither carried nor there")
                continue  # there, version not recorded
            if requirement.specifier and not requirement.specifier.contains(
                Version(have), prereleases=True
            ):
                problems.append(f"{owner} needs {requirement}, but {name} {have} would be used")
    total = sum(p.stat().st_size for p in files)
    if total > MAX_BYTES:
        problems.append(
            f"{total / 2**20:.1f} MiB of wheels: over the {MAX_BYTES / 2**20:.0f} MiB cap"
        )
    if files and not problems:
        problems += scratch_install(files)
    return problems


def scratch_install(files: Sequence[Path]) -> list[str]:
    """pip installs every wheel, offline, for Python 3.12, into a throw-away folder."""
    with tempfile.TemporaryDirectory(prefix="gpu-wheels-") as target:
        command = [
            sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
            "--no-compile", "--target", target, *TARGET, *map(str, files),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return [
            f"pip cannot install the wheels for Python {PYTHON_VERSION}: "
            + result.stderr.strip()[-300:]
        ]
    return []


class PrepareError(Exception):
    """Printed as one line; exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download the wheels the GPU check carries.")
    parser.add_argument("--dest", type=Path, default=WHEEL_DIR, help="wheel folder (.whl)")
    parser.add_argument("--check", action="store_true", help="only check; download nothing")
    args = parser.parse_args(argv)
    versions = wanted_versions()
    try:
        if not args.check:
            download(args.dest, versions)
        for name in remove_stale(args.dest, versions):
            print(f"removed the stale {name}")
        problems = check(args.dest, versions)
    except (PrepareError, OSError, ValueError, zipfile.BadZipFile) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    files = wheels(args.dest)
    total = sum(p.stat().st_size for p in files)
    for path in files:
        print(f"  {path.stat().st_size / 2**20:6.2f} MiB  {path.name}")
    print(f"ready: {len(files)} wheels, {total / 2**20:.1f} MiB in {args.dest}")
    # The GPU machine gets a copy without .git: run.sh reads the commit measured from here.
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=40"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    (args.dest / "COMMIT").write_text((commit or "unknown") + "\n", encoding="utf-8")
    print('on the CUDA machine: run with carry [".whl"] the command  bash bench/gpu/run.sh')
    return 0


if __name__ == "__main__":
    sys.exit(main())
