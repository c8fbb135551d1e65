"""SQL lives in factory/store/: outside it, nothing imports sqlalchemy (a database handle is
`factory.store.db.Database`, and transactions are the store's own).

The same rule as ruff's banned-api list in pyproject.toml, written as an allow-list, so a
sqlalchemy name the ban list does not know still fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXEMPT = (
    "factory/store/",
    "integrations/notion_emulator/",
)


def leaks(source: str) -> list[str]:
    """The imports in `source` that reach past the store: SQL building or the schema."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "sqlalchemy" or a.name == "factory.store.tables"
            ]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names = {a.name for a in node.names}
            module = node.module
            if (
                module.startswith("sqlalchemy.")
                or module == "sqlalchemy"
                or module == "factory.store.tables"
                or (module == "factory.store" and "tables" in names)
            ):
                found.append(f"from {module} import {', '.join(sorted(names))}")
    return found


def test_the_rule_catches_what_it_must() -> None:
    assert leaks("from factory.store import outbox\n") == []
    assert leaks("from factory.store.db import Database\n") == []
    for leak in (
        "from sqlalchemy import Engine, select\n",
        "from sqlalchemy import Connection\n",
        "from sqlalchemy.exc import IntegrityError\n",
        "import sqlalchemy as sa\n",
        "from factory.store.tables import outbox\n",
        "from factory.store import tables\n",
        "def f():\n    from sqlalchemy import text\n",
    ):
        assert leaks(leak), leak


def test_no_sql_outside_the_store() -> None:
    found = {}
    for package in ("factory", "integrations", "workflows"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(EXEMPT):
                continue
            if bad := leaks(path.read_text(encoding="utf-8")):
                found[rel] = bad
    assert found == {}, "SQL outside factory/store/ (add a named function there instead)"
