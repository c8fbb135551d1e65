"""The `nfactory` command line, driven as a user drives it: a real process, real exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from factory.store.tables import tasks
from tests.factory_sources import BETA

REPO = Path(__file__).resolve().parents[1]
NFACTORY = Path(sys.executable).with_name("nfactory")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

Cli = Callable[..., subprocess.CompletedProcess[str]]


def clean_env(tmp: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NFACTORY_")}
    env.update(
        NFACTORY_DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite'}",
        NFACTORY_WORKFLOWS=str(REPO / "workflows"),
        NFACTORY_CODER_REPO=str(REPO),  # the bundled code_change needs a git repository
        COLUMNS="200",
    )
    env.update(settings)
    return env


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Run `nfactory ARGS` in a fresh folder with its own database."""

    def run(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(NFACTORY), *args],
            cwd=tmp_path,
            env=clean_env(tmp_path, **settings),
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}{result.stdout}"
    return result.stdout


def one_json(result: subprocess.CompletedProcess[str]) -> Any:
    """stdout is exactly one JSON document (json.loads refuses trailing text)."""
    return json.loads(ok(result))


def create(cli: Cli, factory: str, title: str, body: str = "", **settings: str) -> str:
    args = ("task", "create", "--factory", factory, "--title", title, "--body", body)
    out = ok(cli(*args, **settings))
    task_id = out.strip()
    assert UUID.match(task_id), f"task create printed {out!r}, not just an id"
    return task_id


def test_help_lists_the_commands(cli: Cli) -> None:
    out = ok(cli("--help"))
    listed = set(re.findall(r"^│ (\w+) ", out, flags=re.MULTILINE))
    expected = {"run", "tick", "status", "history", "factories", "task", "emulator", "demo"}
    assert expected <= listed, out
    assert {"create", "reply"} <= set(re.findall(r"^│ (\w+) ", ok(cli("task", "--help")), re.M))


def test_writing_card_pauses_for_feedback_and_finishes_after_a_reply(cli: Cli) -> None:
    task_id = create(cli, "writing", "Release notes", "Summarise the changes")

    out = ok(cli("run", "--task", task_id[:8]))  # the id prefix `status` shows works too
    assert f"task {task_id}: feedback at approval" in out

    (card,) = one_json(cli("status", "--json"))["tasks"]
    assert card["id"] == task_id and card["title"] == "Release notes"
    assert (card["factory"], card["status"], card["step"]) == ("writing", "feedback", "approval")
    assert card["column"] == "Feedback" and card["last_error"] is None

    doc = one_json(cli("history", "--task", task_id, "--json"))
    assert doc["task_id"] == task_id
    hops = [(t["from_state"], t["to_state"]) for t in doc["transitions"]]
    assert hops[0] == ("draft", "polish")
    assert hops[-2:] == [("polish", "ask_approval"), ("ask_approval", "approval")]
    assert [t["seq"] for t in doc["transitions"]] == list(range(1, len(hops) + 1))

    # a tick before anyone answers changes nothing
    ok(cli("tick"))
    assert len(one_json(cli("history", "--task", task_id, "--json"))["transitions"]) == len(hops)

    ok(cli("task", "reply", "--task", task_id, "--text", "Looks good, approve", "--author", "ann"))
    out = ok(cli("tick"))
    assert re.search(rf"{task_id[:8]}\s+finished\s+3 transitions\s+done", out), out

    (card,) = one_json(cli("status", "--json"))["tasks"]
    assert (card["status"], card["step"], card["column"]) == ("done", "done", "Done")
    after = one_json(cli("history", "--task", task_id, "--json"))["transitions"]
    assert [(t["from_state"], t["to_state"], t["reason"]) for t in after[len(hops) :]] == [
        ("approval", "ask_approval", "feedback.reply"),
        ("ask_approval", "publish", "action.done"),
        ("publish", "done", "action.done"),
    ]
    assert card["transitions"] == len(after)
    # the reply was consumed: another cycle finds nothing to do
    assert "nothing to do" in ok(cli("tick"))


def test_a_flow_card_asks_again_on_a_reply_it_cannot_read_then_finishes(cli: Cli) -> None:
    task_id = create(cli, "writing_flow", "Release notes", "Summarise the changes")
    assert f"task {task_id}: feedback at verdict" in ok(cli("run", "--task", task_id))

    ok(cli("task", "reply", "--task", task_id, "--text", "hmm, not sure", "--author", "ann"))
    ok(cli("tick"))
    (card,) = one_json(cli("status", "--json"))["tasks"]
    assert (card["status"], card["step"], card["column"]) == ("feedback", "verdict", "Feedback")
    hops = one_json(cli("history", "--task", task_id, "--json"))["transitions"]
    assert [(t["from_state"], t["to_state"], t["message"]) for t in hops[-2:]] == [
        ("verdict", "ask_verdict", ""),
        ("ask_verdict", "verdict", "Please reply with approve or revise."),
    ]

    ok(cli("task", "reply", "--task", task_id, "--text", "Approve", "--author", "ann"))
    ok(cli("tick"))
    (card,) = one_json(cli("status", "--json"))["tasks"]
    assert (card["status"], card["step"], card["column"]) == ("done", "done", "Done")
    assert "nothing to do" in ok(cli("tick"))


def test_triage_ends_done_for_a_bug_and_blocked_for_a_card_without_keywords(cli: Cli) -> None:
    bug = create(cli, "triage", "Export crashes with an error", "Broken since 2.3")
    vague = create(cli, "triage", "Quarterly offsite")
    out = ok(cli("tick"))
    assert "finished" in out

    cards = {c["id"]: c for c in one_json(cli("status", "--json"))["tasks"]}
    assert (cards[bug]["status"], cards[bug]["step"], cards[bug]["column"]) == (
        "done",
        "done",
        "Done",
    )
    assert (cards[vague]["status"], cards[vague]["step"], cards[vague]["column"]) == (
        "blocked",
        "needs_detail",
        "Blocked",
    )
    route = [
        (t["from_state"], t["to_state"])
        for t in one_json(cli("history", "--task", bug, "--json"))["transitions"]
    ]
    assert route == [("classify", "route"), ("route", "bug"), ("bug", "done")]


def test_factories_json_lists_the_bundled_factories(cli: Cli) -> None:
    doc = one_json(cli("factories", "--json"))
    by_id = {f["id"]: f for f in doc["factories"]}
    assert set(by_id) == {"code_change", "report", "triage", "writing", "writing_flow"}
    assert by_id["writing"]["start"] == "draft"
    assert "approval" in by_id["writing"]["states"]
    assert by_id["triage"]["source"] == str(REPO / "workflows" / "triage.py")
    # a flow is listed by the states it compiles to, and by the file that defines it
    assert by_id["writing_flow"]["start"] == "draft"
    assert {"ask_verdict", "verdict", "rounds"} <= set(by_id["writing_flow"]["states"])
    assert by_id["writing_flow"]["source"] == str(REPO / "workflows" / "writing_flow.py")
    assert doc["problems"] == []


def test_failures_exit_non_zero_with_one_line_on_stderr(cli: Cli, tmp_path: Path) -> None:
    queued = create(cli, "writing", "Not yet asked anything")
    cases: list[tuple[tuple[str, ...], dict[str, str], str]] = [
        (("history", "--task", "no-such-task"), {}, "no task with id 'no-such-task'"),
        (("run", "--task", "0000"), {}, "no task with id '0000'"),
        # what a person typed is shown as typed, never read as terminal markup
        (("history", "--task", "[/x]"), {}, "no task with id '[/x]'"),
        (
            ("task", "create", "--factory", "nope", "--title", "x"),
            {},
            "unknown factory 'nope'; known factories: code_change, report, triage, writing, "
            "writing_flow",
        ),
        (
            ("task", "reply", "--task", queued, "--text", "hello"),
            {},
            "is queued, not waiting for feedback",
        ),
        (("status",), {"NFACTORY_LEASE_SECONDS": "abc"}, "NFACTORY_LEASE_SECONDS"),
        (
            ("tick",),
            {"NFACTORY_MAX_TRANSITIONS_PER_TICK": "0"},
            "NFACTORY_MAX_TRANSITIONS_PER_TICK",
        ),
        (("status",), {"NFACTORY_DATABASE_URL": "not a url"}, "NFACTORY_DATABASE_URL"),
        (("status",), {"NFACTORY_DATABASE_URL": "mysql://h/db"}, "NFACTORY_DATABASE_URL"),
        # a server that does not answer: the driver's multi-line report must become one line
        (
            ("status",),
            {"NFACTORY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nowhere"},
            "cannot migrate database",
        ),
    ]
    # independent commands: run them at once, a second instead of ten
    procs = [
        subprocess.Popen(
            [str(NFACTORY), *args],
            cwd=tmp_path,
            env=clean_env(tmp_path, **settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, settings, _ in cases
    ]
    for proc, (args, _, reason) in zip(procs, cases, strict=True):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, (args, proc.returncode, out, err)
        lines = err.splitlines()
        assert len(lines) == 1, f"{args}: stderr is not one line: {err!r}"
        assert lines[0].startswith("error: ") and reason in lines[0], (args, err)
        assert "Traceback" not in out + err


def test_a_broken_workflow_module_does_not_hide_the_others(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "triage.py").write_text((REPO / "workflows" / "triage.py").read_text())
    broken = folder / "broken.py"
    broken.write_text("from factory import define_factory\n\nimport no_such_dependency\n")
    settings = {"NFACTORY_WORKFLOWS": str(folder)}

    result = cli("factories", "--json", **settings)
    assert result.returncode == 1, "a folder with an import error must be reported as failing"
    doc = json.loads(result.stdout)
    assert [f["id"] for f in doc["factories"]] == ["triage"]
    (problem,) = doc["problems"]
    assert problem["path"] == str(broken) and problem["severity"] == "error"
    assert (
        "ModuleNotFoundError" in problem["message"] and "no_such_dependency" in problem["message"]
    )
    assert "line 3" in problem["message"]

    # the good factory still works end to end, and the broken module is reported on stderr
    task_id = create(cli, "triage", "Add a CSV export feature", **settings)
    run = cli("run", "--task", task_id, **settings)
    assert f"task {task_id}: done at done" in ok(run)
    assert str(broken) in run.stderr and "no_such_dependency" in run.stderr


def test_tables_show_card_text_verbatim(cli: Cli) -> None:
    """Titles come from people: text that looks like terminal markup is shown as typed."""
    title = "Fix [/b] closing and [bold]raw[/bold] tags"
    task_id = create(cli, "triage", title)
    assert "finished" in ok(cli("run", "--task", task_id))
    assert title in ok(cli("status"))
    assert "needs_detail" in ok(cli("history", "--task", task_id))


# -- a misconfigured worker must not block people's cards --------------------------------


def untouched(cli: Cli, task_id: str) -> dict[str, Any]:
    """The card as `status` shows it, asserting nothing ever ran it or changed its column."""
    (card,) = [t for t in one_json(cli("status", "--json"))["tasks"] if t["id"] == task_id]
    assert (card["status"], card["column"], card["transitions"]) == ("queued", None, 0), card
    assert one_json(cli("history", "--task", task_id, "--json"))["transitions"] == []
    return card


def test_tick_run_and_start_refuse_a_workflows_path_that_does_not_exist(
    cli: Cli, tmp_path: Path
) -> None:
    task_id = create(cli, "triage", "Login crashes with an error")
    missing = {"NFACTORY_WORKFLOWS": "wrkflows"}
    for args in (("tick",), ("run", "--task", task_id), ("start",)):
        result = cli(*args, **missing)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr.splitlines() == [
            "error: NFACTORY_WORKFLOWS: path 'wrkflows' does not exist "
            f"(looked in {tmp_path / 'wrkflows'})"
        ], (args, result.stderr)
    untouched(cli, task_id)
    # the commands that report on the setup still work, and say what is wrong
    factories = cli("factories", **missing)
    assert factories.returncode == 1 and "wrkflows" in factories.stdout
    # with the path fixed, the same card runs
    assert f"task {task_id}: done at done" in ok(cli("run", "--task", task_id))


def test_tick_and_start_refuse_when_no_factory_loads(cli: Cli, tmp_path: Path) -> None:
    task_id = create(cli, "triage", "Login crashes with an error")
    folder = tmp_path / "flows"
    folder.mkdir()
    broken = folder / "triage.py"
    broken.write_text("import no_such_dependency\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (
            {"NFACTORY_WORKFLOWS": str(folder)},
            f"error: no factory loaded from NFACTORY_WORKFLOWS={folder}: {broken}: import "
            "failed (line 1): ModuleNotFoundError: No module named 'no_such_dependency'",
        ),
        (
            {"NFACTORY_WORKFLOWS": str(empty)},
            f"error: no factory loaded from NFACTORY_WORKFLOWS={empty}: "
            "no module in it defines a factory",
        ),
    ]
    for settings, line in cases:
        for args in (("tick",), ("start",)):
            result = cli(*args, **settings)
            assert result.returncode == 1, (args, result.stdout, result.stderr)
            assert result.stderr.splitlines() == [line], (args, result.stderr)
    untouched(cli, task_id)


def triage_and_beta(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A workflows folder with the bundled triage and the BETA factory: its module's path,
    and the settings that load the folder."""
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "triage.py").write_text((REPO / "workflows" / "triage.py").read_text())
    beta = folder / "beta.py"
    beta.write_text(BETA)
    return beta, {"NFACTORY_WORKFLOWS": str(folder)}


def test_a_card_whose_module_fails_to_import_waits_in_queue_and_runs_once_it_is_fixed(
    cli: Cli, tmp_path: Path
) -> None:
    beta, settings = triage_and_beta(tmp_path)
    held = create(cli, "beta", "Needs the beta factory", **settings)
    other = create(cli, "triage", "Login crashes with an error", **settings)

    beta.write_text("import no_such_dependency\n" + BETA)  # someone breaks the module
    out = ok(cli("tick", **settings))
    assert re.search(rf"{held[:8]}\s+held\s+0 transitions\s+queued", out), out
    assert re.search(rf"{other[:8]}\s+finished", out), out  # the others still run
    docs = {t["id"]: t for t in one_json(cli("status", "--json", **settings))["tasks"]}
    card = docs[held]
    assert (card["status"], card["column"], card["transitions"]) == ("queued", "Queue", 0), card
    assert str(beta) in card["last_error"] and "no_such_dependency" in card["last_error"]
    assert "factory 'beta' is not loaded" in card["last_error"]
    assert docs[other]["status"] == "done"

    # the reason reaches the card once, not at every cycle
    ok(cli("tick", **settings))
    run = cli("run", "--task", held, **settings)
    assert f"task {held}: queued" in ok(run) and "no_such_dependency" in run.stdout
    from factory.effects import StateEffect
    from factory.store.db import open_database
    from factory.store.outbox import delivered_effects as card_log  # what the card shows

    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        shown = [e for e in card_log(db, held) if isinstance(e, StateEffect)]
    finally:
        db.dispose()
    assert len(shown) == 1 and shown[0].column == "Queue", shown
    assert "no_such_dependency" in shown[0].error

    beta.write_text(BETA)  # fixed; the next worker run picks the card up
    out = ok(cli("tick", **settings))
    assert re.search(rf"{held[:8]}\s+finished\s+\d+ transitions\s+done", out), out
    card = {t["id"]: t for t in one_json(cli("status", "--json", **settings))["tasks"]}[held]
    assert (card["status"], card["column"], card["last_error"]) == ("done", "Done", None)


def test_a_factory_unknown_with_every_module_loaded_is_still_blocked(
    cli: Cli, tmp_path: Path
) -> None:
    beta, settings = triage_and_beta(tmp_path)
    task_id = create(cli, "beta", "Needs the beta factory", **settings)
    beta.unlink()  # the factory is gone and nothing failed to load: the card is wrong

    out = ok(cli("tick", **settings))
    assert re.search(rf"{task_id[:8]}\s+finished\s+0 transitions\s+blocked", out), out
    (card,) = one_json(cli("status", "--json", **settings))["tasks"]
    assert (card["status"], card["column"]) == ("blocked", "Blocked")
    assert card["last_error"] == "unknown factory 'beta'; known factories: triage"


def test_a_local_reply_is_refused_for_a_card_of_a_notion_board(cli: Cli, tmp_path: Path) -> None:
    from factory.store import repo
    from factory.store.db import open_database

    # a card taken in from a Notion board, waiting for its answer there
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        with db.begin() as conn:
            now = datetime.now(UTC)
            repo.ensure_board(conn, "source-1", "notion", now)
            task_id = repo.create_task(
                conn, factory_id="writing", title="Notes", now=now, board_id="source-1"
            )
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(status="feedback"))
    finally:
        db.dispose()
    result = cli("task", "reply", "--task", task_id, "--text", "approve")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: task {task_id} is on Notion board source-1: reply with a comment on its card "
        "in Notion"
    ]


def test_new_writes_a_factory_and_its_test_that_run_as_they_are(cli: Cli, tmp_path: Path) -> None:
    flows = tmp_path / "flows"  # not there yet: `new` makes the folder
    out = ok(cli("new", "hello", NFACTORY_WORKFLOWS="flows"))
    assert out.startswith("wrote flows/hello.py and flows/test_hello.py\n"), out
    module, test = flows / "hello.py", flows / "test_hello.py"

    task_id = create(cli, "hello", "Try it", NFACTORY_WORKFLOWS="flows")
    assert "done at done" in ok(cli("run", "--task", task_id, NFACTORY_WORKFLOWS="flows"))
    (task,) = one_json(cli("status", "--json", NFACTORY_WORKFLOWS="flows"))["tasks"]
    assert (task["factory"], task["status"], task["column"]) == ("hello", "done", "Done")

    # its test passes as written, and both files are lint-clean
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout
    lint = Path(sys.executable).with_name("ruff")
    for check in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        result = subprocess.run([str(lint), *check, str(flows)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr

    # nothing is overwritten, and what is refused says why on one line
    before = module.read_text()
    also_bundled = f"flows,{REPO / 'workflows'}"
    for args, settings, reason in [
        (("hello",), "flows", f"{Path('flows') / 'hello.py'} already exists; nothing written"),
        (("triage",), also_bundled, f"'triage' is already defined in {REPO / 'workflows'}"),
        (("2fast",), "flows", "cannot use '2fast' as a factory id: use a letter, then"),
        (("my-flow",), "flows", "cannot use 'my-flow' as a factory id"),
        (("json",), "flows", "it would hide the Python module 'json' from its neighbours"),
        (("test_me",), "flows", "modules named test_* are tests, which the loader skips"),
        (("class",), "flows", "it is a Python keyword"),
    ]:
        result = cli("new", *args, NFACTORY_WORKFLOWS=settings)
        assert result.returncode == 1, (args, result.stdout)
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: ") and reason in line, (args, line)
    assert module.read_text() == before
    assert sorted(p.name for p in flows.glob("*.py")) == ["hello.py", "test_hello.py"]
