"""Finds factories in the configured workflow paths.

A module that fails to import is reported with its path and exception, and
the other modules still load: one broken factory must not stop a board. How
modules are imported (a package per folder, neighbours importable by name) is
factory/workflow_imports.py.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from factory.dsl import Factory
from factory.validate import FactoryError, check_factory
from factory.workflow_imports import WorkflowFolders


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


@dataclass
class Catalog:
    factories: dict[str, Factory] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # workflow paths that name nothing loadable (a typo in NFACTORY_WORKFLOWS)
    missing: list[str] = field(default_factory=list)
    # module path -> why it failed: the factories it defines are unknown, not absent
    unloaded: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def refusal(paths: Sequence[str | Path], catalog: Catalog, setting: str) -> str | None:
    """Why a worker must not run with this catalog, or None.

    A worker that runs anyway blocks every card it takes as "unknown factory",
    so a wrong path or a catalog with nothing in it stops the command instead.
    """
    if catalog.missing:
        where = "; ".join(_missing(Path(m)) for m in catalog.missing)
        return f"{setting}: {where}"
    if catalog.factories:
        return None
    shown = ",".join(str(p) for p in paths)
    if catalog.unloaded:
        why = "; ".join(f"{path}: {error}" for path, error in catalog.unloaded.items())
    else:
        why = "no module in it defines a factory"
    return f"no factory loaded from {setting}={shown}: {why}"


def _missing(path: Path) -> str:
    what = "is not a folder or a .py file" if path.exists() else "does not exist"
    return f"path {str(path)!r} {what} (looked in {path.resolve()})"


def module_files(paths: Iterable[str | Path]) -> tuple[list[tuple[Path, Path]], list[Problem]]:
    """The workflow modules the paths name, each with its folder (the root of its
    neighbours' imports): the outermost listed folder holding it, or a listed file's own.

    Paths stay as listed (absolute, symlinks not followed), so a module that is a
    symlink to a file elsewhere is still its folder's module.
    """
    files: list[Path] = []
    folders: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw).absolute()
        if path.is_dir():
            folders.append(path)
            files.extend(
                p for p in sorted(path.rglob("*.py")) if not p.name.startswith(("_", "test_"))
            )
        elif path.is_file() and path.suffix == ".py":
            files.append(path)
        else:
            problems.append(Problem(str(raw), "workflow path does not exist or is not a .py file"))
    # overlapping paths (a folder and a file in it, a folder and its subfolder, a folder
    # listed twice) load each file once, under one name: the outermost folder's, the one
    # its neighbours' imports (`from sub.x import ...`) reach it by
    unique: dict[Path, tuple[Path, Path]] = {}
    for file in files:
        holders = [f for f in folders if file.is_relative_to(f)] or [file.parent]
        unique.setdefault(file.resolve(), (file, min(holders, key=lambda f: len(f.parts))))
    return list(unique.values()), problems


def load_factories(paths: Iterable[str | Path]) -> Catalog:
    """Every factory the paths define; each call imports the modules afresh."""
    files, problems = module_files(paths)
    catalog = Catalog(problems=problems, missing=[p.path for p in problems])
    folders = WorkflowFolders()
    loaded: list[tuple[Path, str, bool]] = []
    for file, root in files:
        name = folders.module_name(root, file)
        loaded.append((file, name, _load_file(file, name, folders, catalog)))
    for file, name, defines in loaded:
        # a module with no factory is a helper if a neighbour imports it; otherwise it
        # is most likely a factory module whose FACTORY went missing
        if not defines and name not in folders.imported and str(file) not in catalog.unloaded:
            catalog.problems.append(
                Problem(
                    str(file),
                    "defines no factory and no workflow module imports it (a helper module? "
                    f"import it from the module that uses it, or name it _{file.name})",
                    "warning",
                )
            )
    return catalog


def _load_file(file: Path, name: str, folders: WorkflowFolders, catalog: Catalog) -> bool:
    """Import one module and register its factories; whether it defines any."""
    resolved = file.resolve()
    try:
        module = folders.load(name, resolved)
    except FactoryError as exc:
        _failed(catalog, file, str(exc))
        return False
    except BaseException as exc:  # SystemExit in a user module must not kill the worker
        if isinstance(exc, KeyboardInterrupt):
            raise
        # the module's own line that failed, also when the error is raised deeper down
        # (by an import, or by a function the module calls)
        lines = [
            f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(resolved)
        ]
        where = f" (line {lines[-1]})" if lines else ""
        _failed(catalog, file, f"import failed{where}: {type(exc).__name__}: {exc}")
        return False
    found = [value for value in vars(module).values() if isinstance(value, Factory)]
    for factory in found:
        _register(factory, file, catalog)
    return bool(found)


def _failed(catalog: Catalog, file: Path, message: str) -> None:
    catalog.problems.append(Problem(str(file), message))
    previous = catalog.unloaded.get(str(file))
    catalog.unloaded[str(file)] = f"{previous}; {message}" if previous else message


def _register(factory: Factory, file: Path, catalog: Catalog) -> None:
    existing = catalog.factories.get(factory.id)
    if existing is factory:
        return
    if existing is not None:
        catalog.problems.append(
            Problem(
                str(file),
                f"duplicate factory id {factory.id!r}: already defined in {existing.source}; "
                "this one is ignored",
            )
        )
        return
    try:
        warnings = check_factory(factory)
    except FactoryError as exc:  # built without define_factory, e.g. Factory(...) directly
        _failed(catalog, file, str(exc))
        return
    catalog.factories[factory.id] = factory
    catalog.problems.extend(
        Problem(str(file), f"factory {factory.id!r}: {w}", "warning") for w in warnings
    )
