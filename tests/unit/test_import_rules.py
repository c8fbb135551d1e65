"""The dependency rule of docs and DESIGN.md: only the composition root (the CLI wiring)
imports integrations/, and nothing imports the composition root.

Checked on every import statement, function-level ones included, so a lazy import cannot
slip past it. tests/unit/test_sql_boundary.py holds the store's rule the same way.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The composition root: the CLI and the demo wire the engine to a board.
ROOT_MODULES = {
    "factory.cli",
    "factory.cli_notion",
    "factory.cli_shared",
    "factory.cli_worker",
    "factory.cli_workspaces",
    "factory.demo",
}


def imported(source: str) -> list[str]:
    """Every module `source` imports (for `from x import y`, both x and x.y)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def breaches() -> list[str]:
    found = []
    for top in ("factory", "integrations", "workflows"):
        for path in sorted((ROOT / top).rglob("*.py")):
            name = module_name(path)
            for target in imported(path.read_text()):
                into_integrations = target.split(".")[0] == "integrations"
                if top != "integrations" and into_integrations and name not in ROOT_MODULES:
                    found.append(f"{name} imports {target}: only the CLI wiring may")
                if target in ROOT_MODULES and name not in ROOT_MODULES:
                    found.append(f"{name} imports {target}: nothing imports the wiring")
    return found


def test_only_the_composition_root_imports_integrations_and_nothing_imports_it() -> None:
    assert breaches() == []


def test_the_rule_sees_lazy_and_aliased_imports() -> None:
    source = (
        "import integrations.notion.client as c\n"
        "def f():\n"
        "    from integrations.notion import board\n"
        "    from factory import cli_worker\n"
    )
    assert imported(source) == [
        "integrations.notion.client",
        "integrations.notion",
        "integrations.notion.board",
        "factory",
        "factory.cli_worker",
    ]
