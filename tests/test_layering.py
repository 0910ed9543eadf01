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
