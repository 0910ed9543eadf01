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


def import_cycles(package: str, root: Path = ROOT) -> list[list[str]]:
    """Groups of `package`'s modules that import each other at run time (lazily or not)."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {
        name: sorted(found & modules.keys() - {name})
        for name, path in modules.items()
        for found in [imported_modules(path, root, runtime_only=True)]
    }
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
