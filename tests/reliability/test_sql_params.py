"""Only parameterized SQL in `storage/`: no SQL text built from values at run time."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STORAGE = Path(__file__).resolve().parents[2] / "storage"
CALLS = {"execute", "executemany", "executescript", "fetchall", "fetchone", "scalar", "insert"}


def _is_literal(node: ast.expr, constants: frozenset[str] = frozenset()) -> bool:
    """A string built only from literals (implicit concatenation, `"a" + "b"`, module-level
    constants that are themselves literals) is safe."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id in constants
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_literal(node.left, constants) and _is_literal(node.right, constants)
    return False


def _literal_constants(tree: ast.AST) -> frozenset[str]:
    """Names assigned a literal string at module level (e.g. a shared SELECT clause)."""
    names: set[str] = set()
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if _is_literal(node.value, frozenset(names)):
                names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)


def built_sql(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, kind) of every SQL argument that is an f-string, a %-format or a concatenation
    involving non-literals, or a `.format()` call."""
    constants = _literal_constants(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CALLS
            and node.args
        ):
            continue
        sql = node.args[0]
        if isinstance(sql, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) for v in sql.values
        ):
            found.append((node.lineno, "f-string"))
        elif isinstance(sql, ast.BinOp) and isinstance(sql.op, ast.Mod):
            found.append((node.lineno, "%-format"))
        elif isinstance(sql, ast.BinOp) and not _is_literal(sql, constants):
            found.append((node.lineno, "concatenation"))
        elif (
            isinstance(sql, ast.Call)
            and isinstance(sql.func, ast.Attribute)
            and sql.func.attr == "format"
        ):
            found.append((node.lineno, ".format()"))
    return found


# PRAGMA values cannot be bound; these are int() of a validated setting or a migration number.
ALLOWED = {("database.py", "PRAGMA busy_timeout"), ("schema.py", "PRAGMA user_version")}


@pytest.mark.parametrize("path", sorted(STORAGE.rglob("*.py")), ids=lambda p: p.name)
def test_storage_builds_no_sql_from_values(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    offences = [
        f"{path.name}:{line}: {kind}: {lines[line - 1].strip()}"
        for line, kind in built_sql(ast.parse(source))
        if not any(path.name == name and text in lines[line - 1] for name, text in ALLOWED)
    ]
    assert offences == []


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ('tx.execute(f"SELECT * FROM jobs WHERE id = {job_id}")', "f-string"),
        ('tx.execute("SELECT * FROM jobs WHERE id = %s" % job_id)', "%-format"),
        ('tx.execute("SELECT * FROM jobs WHERE id = " + str(job_id))', "concatenation"),
        ('tx.executemany("DELETE FROM {}".format(table), rows)', ".format()"),
        ('conn.executescript(f"DROP TABLE {name}")', "f-string"),
    ],
)
def test_the_checker_catches_each_way_of_building_sql(code: str, kind: str) -> None:
    assert [k for _, k in built_sql(ast.parse(code))] == [kind]


def test_the_checker_accepts_placeholders_and_literal_concatenation() -> None:
    code = (
        'SELECT = "SELECT * FROM jobs"\n'
        'tx.execute(SELECT + " WHERE id = ?" + " AND 1", (job_id,))\n'
        'tx.execute("SELECT 1 " "FROM jobs WHERE id = ?", (job_id,))'
    )
    assert built_sql(ast.parse(code)) == []
