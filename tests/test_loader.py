"""factory.loader: finding factories in workflow paths, and reporting what is wrong with them."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from factory.loader import Catalog, load_factories

REPO = Path(__file__).resolve().parents[1]

GOOD = """
from factory import action, define_factory, done, failed

def work(inp):
    return {{"status": "done"}}

FACTORY = define_factory(
    id={id!r},
    start="work",
    states={{
        "work": action(work, on={{"done": "done", "failed": "failed"}}),
        "done": done(),
        "failed": failed(),
    }},
)
"""


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def good(folder: Path, name: str, factory_id: str) -> Path:
    return write(folder, name, GOOD.format(id=factory_id))


def only_problem(catalog: Catalog, path: Path) -> str:
    found = [p for p in catalog.problems if p.path == str(path)]
    assert len(found) == 1, catalog.problems
    return found[0].message


def test_the_bundled_workflows_load_cleanly() -> None:
    catalog = load_factories([REPO / "workflows"])
    assert set(catalog.factories) == {
        "code_change",
        "report",
        "triage",
        "writing",
        "writing_flow",
    }
    assert catalog.problems == []
    assert catalog.factories["triage"].source == str(REPO / "workflows" / "triage.py")


def test_a_module_that_fails_to_import_is_reported_and_the_others_still_load(
    tmp_path: Path,
) -> None:
    good(tmp_path, "a_first.py", "first")
    zero = write(tmp_path, "b_zero.py", "import factory\n\nRATE = 1 / 0\n")
    missing = write(tmp_path, "c_missing.py", "import no_such_dependency_xyz\n")
    syntax = write(tmp_path, "d_syntax.py", "def broken(:\n    pass\n")
    # SystemExit in a user module must not take the worker down with it
    exits = write(tmp_path, "e_exits.py", "raise SystemExit(3)\n")
    good(tmp_path, "z_last.py", "last")

    catalog = load_factories([tmp_path])

    assert set(catalog.factories) == {"first", "last"}
    assert len(catalog.errors) == 4
    assert only_problem(catalog, zero) == (
        "import failed (line 3): ZeroDivisionError: division by zero"
    )
    assert "ModuleNotFoundError" in only_problem(catalog, missing)
    assert "no_such_dependency_xyz" in only_problem(catalog, missing)
    message = only_problem(catalog, syntax)
    assert "SyntaxError" in message and "line 1" in message
    assert only_problem(catalog, exits) == "import failed (line 1): SystemExit: 3"
    # a failed module leaves nothing half-imported behind
    assert not [m for m in sys.modules if "b_zero" in m or "d_syntax" in m]


def test_duplicate_factory_ids_across_files_are_rejected_naming_both_files(
    tmp_path: Path,
) -> None:
    first = good(tmp_path / "team_a", "flow.py", "shared")
    second = good(tmp_path / "team_b", "flow.py", "shared")

    catalog = load_factories([tmp_path])

    assert list(catalog.factories) == ["shared"]
    assert catalog.factories["shared"].source == str(first)
    message = only_problem(catalog, second)
    assert "duplicate factory id 'shared'" in message
    assert str(first) in message
    assert catalog.errors[0].path == str(second)


def test_same_file_names_in_different_folders_are_different_modules(tmp_path: Path) -> None:
    good(tmp_path / "one", "triage.py", "triage-one")
    good(tmp_path / "two", "triage.py", "triage-two")
    catalog = load_factories([tmp_path / "one", tmp_path / "two"])
    assert set(catalog.factories) == {"triage-one", "triage-two"}
    assert catalog.problems == []


def test_overlapping_paths_load_each_file_once(tmp_path: Path) -> None:
    """A folder plus a file inside it (or a folder listed twice) is not a duplicate id."""
    flow = good(tmp_path, "flow.py", "flow")
    catalog = load_factories([tmp_path, flow, tmp_path, f"{tmp_path}/./"])
    assert list(catalog.factories) == ["flow"]
    assert catalog.problems == []


def test_validation_errors_name_the_factory_the_file_and_the_state(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad_target.py",
        """
        from factory import action, define_factory, done, failed

        def work(inp):
            return {"status": "done"}

        FACTORY = define_factory(
            id="publisher",
            start="write",
            states={
                "write": action(work, on={"done": "pubish", "failed": "failed"}),
                "publish": action(work, on={"done": "done", "failed": "failed"}),
                "done": done(),
                "failed": failed(),
            },
        )
        """,
    )
    good(tmp_path, "fine.py", "fine")

    catalog = load_factories([tmp_path])

    assert set(catalog.factories) == {"fine"}
    message = only_problem(catalog, bad)
    assert "factory 'publisher'" in message
    assert str(bad) in message
    assert "state 'write'" in message and "'pubish'" in message


def test_a_factory_built_without_define_factory_is_still_validated(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "raw.py",
        """
        from factory.dsl import Factory, done

        FACTORY = Factory(id="raw", start="begin", states={"end": done()}, source=__file__)
        """,
    )
    catalog = load_factories([bad])
    assert catalog.factories == {}
    message = only_problem(catalog, bad)
    assert "factory 'raw'" in message and "start state 'begin' does not exist" in message


def test_unreachable_states_are_warnings_and_the_factory_loads(tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "island.py",
        """
        from factory import action, blocked, define_factory, done, failed

        def work(inp):
            return {"status": "done"}

        FACTORY = define_factory(
            id="island",
            start="work",
            states={
                "work": action(work, on={"done": "done", "failed": "failed"}),
                "orphan": blocked(),
                "done": done(),
                "failed": failed(),
            },
        )
        """,
    )
    catalog = load_factories([flow])
    assert set(catalog.factories) == {"island"}
    assert catalog.errors == []
    (warning,) = catalog.problems
    assert warning.severity == "warning" and warning.path == str(flow)
    assert "factory 'island'" in warning.message
    assert "'orphan' is unreachable" in warning.message


@pytest.mark.parametrize("name", ["notes.txt", "missing.py", "no_such_folder"])
def test_a_path_that_is_not_a_python_file_or_folder_is_reported(tmp_path: Path, name: str) -> None:
    (tmp_path / "notes.txt").write_text("not python")
    good(tmp_path, "real.py", "real")
    target = tmp_path / name
    catalog = load_factories([target, tmp_path / "real.py"])
    assert set(catalog.factories) == {"real"}
    assert only_problem(catalog, target) == "workflow path does not exist or is not a .py file"


def test_a_folder_skips_private_and_test_modules(tmp_path: Path) -> None:
    good(tmp_path, "flow.py", "flow")
    write(tmp_path, "_helpers.py", "raise RuntimeError('not a workflow')\n")
    write(tmp_path, "test_flow.py", "raise RuntimeError('not a workflow')\n")
    write(tmp_path, "sub/nested.py", GOOD.format(id="nested"))
    catalog = load_factories([tmp_path])
    assert set(catalog.factories) == {"flow", "nested"}
    assert catalog.problems == []


# neighbours: modules in a workflows folder import each other by name


def counted(name: str) -> str:
    """Module source that records each execution of itself in runs.log beside it."""
    return (
        "from pathlib import Path\n\n"
        "with Path(__file__).with_name('runs.log').open('a') as log:\n"
        f"    log.write({name!r} + '\\n')\n"
    )


def test_a_module_imports_its_neighbours_and_no_other_folder_sees_them(tmp_path: Path) -> None:
    path_before = list(sys.path)
    one = tmp_path / "one"
    write(one, "common.py", "GREETING = 'hello'\n")
    write(one, "team/rules.py", "LIMIT = 3\n")
    write(
        one,
        "flow.py",
        GOOD.format(id="flow")
        + "\nfrom common import GREETING\nimport team.rules\nfrom .common import GREETING as G2\n"
        "SETTINGS = (GREETING, team.rules.LIMIT, G2)\n",
    )
    other = write(tmp_path / "two", "flow.py", "import common\n" + GOOD.format(id="two"))

    catalog = load_factories([one, tmp_path / "two"])

    assert set(catalog.factories) == {"flow"}
    work = catalog.factories["flow"].states["work"].agent
    assert work.__globals__["SETTINGS"] == ("hello", 3, "hello")
    # the neighbours of one folder are not another's, nor anyone else's: the import
    # path is untouched
    assert "ModuleNotFoundError: No module named 'common'" in only_problem(catalog, other)
    assert sys.path == path_before
    with pytest.raises(ModuleNotFoundError):
        __import__("common")


@pytest.mark.parametrize("helper", ["common.py", "zz_common.py"])
def test_a_module_loaded_and_imported_by_a_neighbour_runs_once(tmp_path: Path, helper: str) -> None:
    """Loaded before its importer (common.py) or after it (zz_common.py): one module."""
    stem = helper.removesuffix(".py")
    write(tmp_path, helper, counted(stem) + GOOD.format(id="shared"))
    write(
        tmp_path,
        "flow.py",
        counted("flow")
        + f"import {stem}\n"
        + GOOD.format(id="flow").replace("action(work,", f"action({stem}.work,"),
    )
    catalog = load_factories([tmp_path])
    assert set(catalog.factories) == {"flow", "shared"}
    assert catalog.problems == []
    assert sorted((tmp_path / "runs.log").read_text().split()) == sorted(["flow", stem])
    # the function the flow runs is the one the loaded module defines: one module object
    flow_work = catalog.factories["flow"].states["work"].agent
    assert flow_work is catalog.factories["shared"].states["work"].agent


def test_a_helper_module_imported_by_a_neighbour_loads_without_a_warning(
    tmp_path: Path,
) -> None:
    write(tmp_path, "helpers.py", "def greet(name):\n    return f'hello {name}'\n")
    flow = write(tmp_path, "flow.py", "from helpers import greet\n" + GOOD.format(id="flow"))
    catalog = load_factories([tmp_path, flow])
    assert set(catalog.factories) == {"flow"}
    assert catalog.problems == []


def test_a_module_defining_no_factory_that_nothing_imports_is_reported_once(
    tmp_path: Path,
) -> None:
    good(tmp_path, "flow.py", "flow")
    stray = write(tmp_path, "stray.py", "from factory import define_factory\n\nLIMIT = 3\n")
    # listed twice (its folder and itself): still one warning
    catalog = load_factories([tmp_path, stray])
    assert set(catalog.factories) == {"flow"}
    (problem,) = catalog.problems
    assert problem.severity == "warning" and problem.path == str(tmp_path / "stray.py")
    assert problem.message.startswith("defines no factory and no workflow module imports it")
    assert "_stray.py" in problem.message


def test_a_module_that_is_a_symlink_to_a_file_elsewhere_loads_as_its_folders(
    tmp_path: Path,
) -> None:
    shared = write(tmp_path / "shared", "common.py", "X = 1\n")
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "common.py").symlink_to(shared)
    write(folder, "a.py", "from common import X\n" + GOOD.format(id="a"))
    catalog = load_factories([folder])
    assert sorted(catalog.factories) == ["a"]
    assert [p for p in catalog.problems if p.level == "error"] == []


def test_a_folder_listed_with_its_subfolder_runs_each_module_once(tmp_path: Path) -> None:
    """`wf/sub,wf`: the file belongs to the outermost folder, the one its neighbours'
    imports (`from sub.x import ...`) reach it by, whichever is listed first."""
    folder = tmp_path / "wf"
    write(folder / "sub", "x.py", counted("x") + GOOD.format(id="x"))
    write(folder, "a.py", "from sub.x import FACTORY as X\n" + GOOD.format(id="a"))
    runs = folder / "sub" / "runs.log"  # counted() writes beside the module
    for order in ([folder / "sub", folder], [folder, folder / "sub"]):
        runs.unlink(missing_ok=True)
        catalog = load_factories(order)
        assert sorted(catalog.factories) == ["a", "x"]
        assert [p for p in catalog.problems if p.level == "error"] == []
        assert runs.read_text().split() == ["x"]
