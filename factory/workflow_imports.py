"""How workflow modules are imported: each folder a private package, neighbours by name.

Each folder named in NFACTORY_WORKFLOWS becomes a package of its own under a
private name (`nfactory_workflows_<hash of its path>`), so two `triage.py` in
different folders are two modules. Inside a folder, modules import their
neighbours as they would with the folder on the import path (`from common
import helper`, `from team.rules import x`) or relatively (`from .common import
helper`). The folder is never put on `sys.path`: only the `import` statements of
that folder's own modules see its neighbours, so no other folder or library can
pick up (or be shadowed by) a workflow module. A neighbour is imported under its
package name, so the module a neighbour imports and the one the loader registers
are one module object, executed once.

The folder's own `__init__.py`, if any, is not run: the folder is a set of
modules, not a package of the user's (`__init__.py` of a subfolder is, as usual).
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

PREFIX = "nfactory_workflows_"


class _Folder:
    """One workflow folder: its package name, its neighbours, its modules' builtins."""

    def __init__(self, package: str, root: Path, imported: set[str]) -> None:
        self.package = package
        self.root = root
        self.imported = imported  # names of the modules a workflow module imported
        # listed once per load: the import hook runs on every `import` the modules execute
        self.neighbours = {p.stem for p in root.glob("*.py") if p.stem.isidentifier()} | {
            d.name
            for d in root.iterdir()
            if d.is_dir() and d.name.isidentifier() and any(d.glob("*.py"))
        }
        self.builtins = {**builtins.__dict__, "__import__": self._import}

    def _import(
        self,
        name: str,
        globals: dict[str, Any] | None = None,
        locals: Any = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> ModuleType:
        top = name.partition(".")[0]
        if level == 0 and top not in self.neighbours:
            return builtins.__import__(name, globals, locals, fromlist, level)
        if level == 0:
            target = f"{self.package}.{name}"
            module = builtins.__import__(target, globals, locals, fromlist, 0)
            if not fromlist:  # `import common.x` binds `common`, not the private package
                module = sys.modules[f"{self.package}.{top}"]
        else:
            module = builtins.__import__(name, globals, locals, fromlist, level)
            package = (globals or {}).get("__package__") or ""
            target = importlib.util.resolve_name("." * level + name, package) if name else package
        self._note(target, fromlist or ())
        return module

    def _note(self, target: str, fromlist: Sequence[str]) -> None:
        parts = target.split(".")
        self.imported.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        self.imported.update(f"{target}.{item}" for item in fromlist)


class _FolderLoader(importlib.abc.Loader):
    """A folder as a package with no code of its own (the root, or a subfolder without
    an `__init__.py`)."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        return None


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """A workflow module, run with builtins whose `__import__` knows its neighbours."""

    def exec_module(self, module: ModuleType) -> None:
        folder = _FOLDERS[module.__name__.partition(".")[0]]
        module.__dict__["__builtins__"] = folder.builtins
        super().exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds `nfactory_workflows_<hash>.<module>` in its folder; nothing else."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, rest = fullname.partition(".")
        folder = _FOLDERS.get(package)
        if folder is None:
            return None
        where = folder.root.joinpath(*rest.split(".")) if rest else folder.root
        init = where / "__init__.py"
        if rest and init.is_file():
            return importlib.util.spec_from_file_location(
                fullname,
                init,
                loader=_SourceLoader(fullname, str(init)),
                submodule_search_locations=[str(where)],
            )
        source = where.with_name(f"{where.name}.py")
        if rest and source.is_file():
            return importlib.util.spec_from_file_location(
                fullname, source, loader=_SourceLoader(fullname, str(source))
            )
        if where.is_dir():
            spec = importlib.machinery.ModuleSpec(fullname, _FolderLoader(), is_package=True)
            spec.submodule_search_locations = [str(where)]
            return spec
        return None


_FOLDERS: dict[str, _Folder] = {}
_FINDER = _Finder()


class WorkflowFolders:
    """The folders of one load. Each load imports the modules afresh (an edited module is
    read again); within a load every module is executed once."""

    def __init__(self) -> None:
        self.imported: set[str] = set()
        self._started: set[str] = set()
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)

    def module_name(self, root: Path, file: Path) -> str:
        """The module name `file` (in folder `root`) is imported under."""
        package = PREFIX + hashlib.sha1(str(root).encode()).hexdigest()[:10]
        if package not in self._started:
            self._started.add(package)
            for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
                del sys.modules[name]
            _FOLDERS[package] = _Folder(package, root, self.imported)
        parts = file.relative_to(root).with_suffix("").parts
        if all(p.isidentifier() for p in parts):
            return ".".join((package, *parts))
        # a file no import statement can name (`my-flow.py`): still its folder's module
        return f"{package}.{'_'.join(parts).replace('.', '_').replace('-', '_')}__file"

    def load(self, name: str, file: Path) -> ModuleType:
        """The module `name`, imported (or already imported by a neighbour)."""
        if not name.endswith("__file"):
            return importlib.import_module(name)
        importlib.import_module(name.rpartition(".")[0])
        spec = importlib.util.spec_from_file_location(
            name, file, loader=_SourceLoader(name, str(file))
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
