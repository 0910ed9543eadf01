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


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Full dotted names a module imports (relative imports resolved from its package)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
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
