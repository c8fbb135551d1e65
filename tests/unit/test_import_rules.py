"""The dependency rule of docs and DESIGN.md: only the composition root (the CLI wiring)
imports integrations/, and nothing imports the composition root.

Checked on every import statement, function-level ones included, so a lazy import cannot
slip past it. tests/unit/test_sql_boundary.py holds the store's rule the same way.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The composition root: the package holding the CLI, the demo and their wiring.
ROOT_PACKAGE = "factory.cli"


def in_root(module: str) -> bool:
    return module == ROOT_PACKAGE or module.startswith(ROOT_PACKAGE + ".")


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
                if top != "integrations" and into_integrations and not in_root(name):
                    found.append(f"{name} imports {target}: only the CLI wiring may")
                if in_root(target) and not in_root(name):
                    found.append(f"{name} imports {target}: nothing imports the wiring")
    return found


def test_only_the_composition_root_imports_integrations_and_nothing_imports_it() -> None:
    assert breaches() == []


def test_the_rule_sees_lazy_and_aliased_imports() -> None:
    source = (
        "import integrations.notion.client as c\n"
        "def f():\n"
        "    from integrations.notion import board\n"
        "    from factory.cli import start\n"
    )
    assert imported(source) == [
        "integrations.notion.client",
        "integrations.notion",
        "integrations.notion.board",
        "factory.cli",
        "factory.cli.start",
    ]
