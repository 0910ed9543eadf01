"""The import rules of docs/ARCHITECTURE.md, checked on the source text of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ML_PACKAGES = {"torch", "diffusers", "transformers", "safetensors", "sentencepiece", "accelerate"}


def imported_top_levels(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Map each module file of `package` to the top-level names it imports (at any depth)."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", "") == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(str(node.args[0].value).split(".")[0])
        found[str(path.relative_to(root))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("generation", {"discord", "storage", "bot", "aiosqlite"}),
        ("storage", {"discord", "generation", "bot"} | ML_PACKAGES),
        ("bot", ML_PACKAGES),
    ],
)
def test_package_never_imports_forbidden_layers(package: str, forbidden: set[str]) -> None:
    offenders = {
        module: sorted(names & forbidden)
        for module, names in imported_top_levels(package).items()
        if names & forbidden
    }
    assert offenders == {}, f"{package}/ breaks the layering: {offenders}"


def test_layering_check_sees_lazy_and_dynamic_imports(tmp_path: Path) -> None:
    """The checker must catch imports inside functions, or the rule above could pass vacuously."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        "import os\n"
        "def f():\n"
        "    import discord.ext\n"
        "    from storage.jobs import x\n"
        "    importlib.import_module('torch.cuda')\n"
        "    from . import sibling\n"
    )
    assert imported_top_levels("pkg", tmp_path) == {
        "pkg/mod.py": {"os", "discord", "storage", "torch"}
    }
    assert imported_top_levels("generation"), "no generation modules were scanned"


def imported_modules(path: Path, root: Path = ROOT, *, runtime_only: bool = False) -> set[str]:
    """Full dotted names a module imports (relative imports resolved from its package);
    `runtime_only` leaves out those under `if TYPE_CHECKING:` (for annotations only)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            # `from bot.cogs import usage` imports the module bot.cogs.usage.
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_no_cog_imports_another_cog() -> None:
    """Cogs are thin adapters: what two of them share lives in a non-cog module of bot/."""
    cogs = sorted((ROOT / "bot" / "cogs").glob("*.py"))
    cog_modules = {f"bot.cogs.{p.stem}" for p in cogs if p.stem != "__init__"}
    assert cog_modules, "no cogs were scanned"
    offenders = {
        p.name: sorted(imported_modules(p) & (cog_modules - {f"bot.cogs.{p.stem}"})) for p in cogs
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_cog_import_check_sees_absolute_relative_and_from_package_imports(
    tmp_path: Path,
) -> None:
    source = (
        "from bot.cogs.usage import limit_text\n"
        "from . import generate\n"
        "from .stats import x\n"
        "import bot.cogs.reactions\n"
        "from bot import quota_text\n"
    )
    path = tmp_path / "bot" / "cogs" / "probe.py"
    path.parent.mkdir(parents=True)
    path.write_text(source)
    found = imported_modules(path, tmp_path)
    assert {
        "bot.cogs.usage",
        "bot.cogs.generate",
        "bot.cogs.stats",
        "bot.cogs.reactions",
        "bot.quota_text",
    } <= found


def runtime_imports(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Each module of `package` (dotted name) → every module it imports at run time."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        found[name] = imported_modules(path, root, runtime_only=True)
    return found


def import_cycles(package: str, root: Path = ROOT) -> list[list[str]]:
    """Groups of `package`'s modules that import each other at run time (lazily or not)."""
    imports = runtime_imports(package, root)
    graph = {name: sorted(found & imports.keys() - {name}) for name, found in imports.items()}
    cycles: list[list[str]] = []
    for start in graph:
        # Depth-first from `start`, looking for a way back to it.
        seen: set[str] = set()
        todo = [(start, [start])]
        while todo:
            node, trail = todo.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycle = sorted(trail)
                    if cycle not in cycles:
                        cycles.append(cycle)
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, [*trail, nxt]))
    return cycles


def test_no_two_bot_modules_import_each_other() -> None:
    """The job service puts buttons under its messages and buttons start jobs: what both need
    (where a job comes from) lives in bot/origins.py, so neither imports the other, not even
    inside a function."""
    assert import_cycles("bot") == []


def test_the_cycle_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg import b\n")
    (tmp_path / "pkg" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pkg import c\n"
        "def f():\n"
        "    from pkg.a import x\n"
    )
    (tmp_path / "pkg" / "c.py").write_text("import pkg.b\n")
    assert import_cycles("pkg", tmp_path) == [["pkg.a", "pkg.b"]]


# The job layer asks the presentation side for every button, embed and text (a presenter
# passed in by bot/client.py); it never builds a `discord.ui` item itself.
UI_BUILDERS = {"bot.buttons", "bot.presentation"}


def reachable(imports: dict[str, set[str]], start: str) -> set[str]:
    """Modules `start` loads at run time, through modules of the scanned package."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for name in imports.get(todo.pop(), set()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def ui_imports(package: str, layer: str, root: Path = ROOT) -> dict[str, list[str]]:
    """For each module of `layer` (a sub-package of `package`): the `discord.ui` builders it
    loads at run time, directly or through other modules of `package`."""
    imports = runtime_imports(package, root)
    found: dict[str, list[str]] = {}
    for name in imports:
        if name != layer and not name.startswith(f"{layer}."):
            continue
        loaded = reachable(imports, name)
        bad = {m for m in loaded if m in UI_BUILDERS or m == "discord.ui"}
        bad |= {m for m in loaded if m.startswith("discord.ui.")}
        if bad:
            found[name] = sorted(bad)
    return found


def test_the_job_layer_builds_no_discord_ui_item() -> None:
    assert runtime_imports("bot").keys() >= {"bot.jobs.service", "bot.jobs.delivery"}
    assert ui_imports("bot", "bot.jobs") == {}


def test_the_ui_check_sees_a_builder_imported_through_another_module(tmp_path: Path) -> None:
    (tmp_path / "bot" / "jobs").mkdir(parents=True)
    (tmp_path / "bot" / "__init__.py").write_text("")
    (tmp_path / "bot" / "jobs" / "__init__.py").write_text("")
    (tmp_path / "bot" / "jobs" / "part.py").write_text("def f():\n    from bot import helper\n")
    (tmp_path / "bot" / "helper.py").write_text("from bot.buttons import cancel_buttons\n")
    (tmp_path / "bot" / "jobs" / "other.py").write_text("from discord.ui import View\n")
    assert ui_imports("bot", "bot.jobs", tmp_path) == {
        "bot.jobs.part": ["bot.buttons"],
        "bot.jobs.other": ["discord.ui", "discord.ui.View"],
    }


ORIGIN_CLASSES = {"CommandOrigin", "ReactionOrigin", "ButtonOrigin", "ResumedOrigin"}


def origin_branches(package: str, root: Path = ROOT) -> list[str]:
    """`isinstance(x, <an origin class>)` anywhere in `package`: file and line."""
    found: list[str] = []
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance"
                and len(node.args) == 2
                and {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                & ORIGIN_CLASSES
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_the_job_layer_never_asks_which_origin_it_was_given() -> None:
    """Each origin knows how to show and refuse for itself (bot/origins.py)."""
    assert origin_branches("bot/jobs") == []


def test_the_origin_check_sees_an_isinstance_on_a_union(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(
        "def f(o):\n    return isinstance(o, CommandOrigin | ButtonOrigin)\n"
    )
    assert origin_branches("pkg", tmp_path) == ["pkg/a.py:2"]


# What writes a job's state in storage (`JobRepository`'s writes and `Storage.admit`).
JOB_STATE_WRITES = {
    "admit",
    "mark_running",
    "mark_done",
    "mark_failed",
    "mark_cancelled",
    "set_message",
}


def job_state_writes(package: str, outside: str, root: Path = ROOT) -> list[str]:
    """Calls of a job-state write (`x.mark_done(...)`, ...) in `package` but outside the
    sub-folder `outside`: file and line."""
    found: list[str] = []
    for path in sorted((root / package).rglob("*.py")):
        if (root / outside) in path.parents:
            continue
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in JOB_STATE_WRITES
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_nothing_outside_the_job_layer_writes_a_jobs_state() -> None:
    """Cogs, buttons and the client call the job service; only bot/jobs/ writes a job's row."""
    assert job_state_writes("bot", "bot/jobs") == []
    assert job_state_writes("bot", "bot/nothing"), "the check found no write at all"


def test_the_state_write_check_sees_a_write_through_any_name(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "jobs").mkdir(parents=True)
    (tmp_path / "pkg" / "jobs" / "ok.py").write_text("async def f(s):\n    await s.admit(1)\n")
    (tmp_path / "pkg" / "cog.py").write_text(
        "async def f(bot):\n    await bot.store.jobs.mark_done(1)\n"
    )
    assert job_state_writes("pkg", "pkg/jobs", tmp_path) == ["pkg/cog.py:2"]
