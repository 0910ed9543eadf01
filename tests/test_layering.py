"""The import rules of docs/ARCHITECTURE.md, checked on the source text of every module."""

from __future__ import annotations

import ast
from collections.abc import Collection
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


def imported_modules(
    path: Path,
    root: Path = ROOT,
    *,
    runtime_only: bool = False,
    modules: Collection[str] | None = None,
) -> set[str]:
    """Full dotted names a module imports (relative imports resolved from its package);
    `runtime_only` leaves out those under `if TYPE_CHECKING:` (for annotations only). Given the
    names of all `modules`, `from p import name` counts as importing the module `p.name` when
    there is one, else `p` (without them: both)."""
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
            # `from bot.cogs import usage` imports the module bot.cogs.usage.
            inside = {f"{module}.{alias.name}" for alias in node.names}
            names.update(inside)
            if modules is None or inside - set(modules):
                names.add(module)
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


PRODUCT = ("bot", "generation", "storage")


def import_graph(*packages: str, root: Path = ROOT) -> dict[str, list[str]]:
    """Each module of `packages` -> the modules of `packages` it imports at run time, lazily
    (inside a function) or not; imports under `if TYPE_CHECKING:` are for annotations only."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    return {
        name: sorted(
            imported_modules(path, root, runtime_only=True, modules=modules.keys())
            & modules.keys() - {name}
        )
        for name, path in modules.items()
    }


def import_cycles(*packages: str, root: Path = ROOT) -> list[list[str]]:
    """Groups of modules of `packages` that import each other at run time, directly or round a
    longer circle. Each group is sorted, the groups by their first name."""
    return strongly_connected(import_graph(*packages, root=root))


def strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one node: the import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return sorted(found)


@pytest.mark.parametrize("packages", [("bot",), ("generation",), ("storage",), PRODUCT])
def test_no_module_imports_one_that_imports_it_back(packages: tuple[str, ...]) -> None:
    """No run-time import circle in any package, nor across the product: what two modules both
    need lives in a third that neither imports back (bot/origins.py for the job service and
    the buttons; generation/hub.py for the loader and the translator), not even inside a
    function."""
    graph = import_graph(*packages)
    assert {name.split(".")[0] for name in graph} == set(packages), "a package was not scanned"
    assert strongly_connected(graph) == []


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
    assert import_cycles("pkg", root=tmp_path) == [["pkg.a", "pkg.b"]]


def test_the_cycle_check_sees_a_longer_circle_across_packages(tmp_path: Path) -> None:
    """loader -> pipeline -> translate -> loader, as generation/ once had, and one that only
    closes through a second package."""
    for package in ("gen", "app"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "gen" / "loader.py").write_text("def load():\n    from gen.pipeline import E\n")
    (tmp_path / "gen" / "pipeline.py").write_text("from gen.translate import T\n")
    (tmp_path / "gen" / "translate.py").write_text("def t():\n    from gen.loader import _quiet\n")
    (tmp_path / "gen" / "uses_app.py").write_text("import app.side\n")
    (tmp_path / "app" / "side.py").write_text("from gen import uses_app\n")
    assert import_cycles("gen", root=tmp_path) == [["gen.loader", "gen.pipeline", "gen.translate"]]
    assert import_cycles("gen", "app", root=tmp_path) == [
        ["app.side", "gen.uses_app"],
        ["gen.loader", "gen.pipeline", "gen.translate"],
    ]


def test_from_a_package_importing_a_submodule_depends_on_that_submodule(tmp_path: Path) -> None:
    """`from storage import schema` inside a module that storage/__init__.py imports is no
    circle (schema is its own module); `from pkg import name` of a name the package defines is."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from pkg.store import Store\nVALUE = 1\n")
    (tmp_path / "pkg" / "store.py").write_text("from pkg import schema\nStore = 1\n")
    (tmp_path / "pkg" / "schema.py").write_text("")
    assert import_cycles("pkg", root=tmp_path) == []
    (tmp_path / "pkg" / "schema.py").write_text("from pkg import VALUE\n")
    assert import_cycles("pkg", root=tmp_path) == [["pkg", "pkg.schema", "pkg.store"]]


def runtime_imports(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Each module of `package` (dotted name) → every module it imports at run time."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        found[name] = imported_modules(path, root, runtime_only=True)
    return found


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
