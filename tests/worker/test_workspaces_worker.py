"""Workspace factories under real `nfactory start` processes: two cards at once in their own
worktrees, and a worker SIGKILLed mid-agent whose card another worker finishes in the same one."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from integrations.notion_emulator.server import EmulatorServer
from tests.worker.harness import Db, Stage, Worker, wait_for
from tests.workspaces.gitrepo import IDENTITY, branches, log, make_repo, show

FLOW = """
import json, os, subprocess, time
from pathlib import Path

from factory import GitWorkspace, action, define_factory, done, failed

MARKS = Path({marks!r})


def commit(where, message):
    subprocess.run(["git", "add", "-A"], cwd=where, check=True)
    subprocess.run(["git", "commit", "-qm", message], cwd=where, check=True)


def edit(inp):
    (inp.workspace / "shared.txt").write_text(f"edited for {{inp.title}}\\n")
    me = MARKS / f"edit-{{inp.run_id}}"
    me.write_text(str(inp.workspace))
    # both cards' agents are in their worktrees at once: wait until the other one is too
    deadline = time.monotonic() + 60
    while len(list(MARKS.glob("edit-*"))) < {expect} and time.monotonic() < deadline:
        time.sleep(0.05)
    commit(inp.workspace, f"edit for {{inp.title}}")
    return {{"status": "done"}}


def slow(inp):
    worker = os.environ["NFACTORY_WORKER_ID"]
    (MARKS / f"slow-{{worker}}").write_text(json.dumps({{"workspace": str(inp.workspace)}}))
    if worker == "first":
        time.sleep(600)  # killed in here
    (inp.workspace / "after.txt").write_text("finished by the second worker\\n")
    commit(inp.workspace, "finish")
    return {{"status": "done"}}


FACTORY = define_factory(
    id="coder",
    start="edit",
    states={{
        "edit": action(edit, on={{"done": {after_edit!r}, "failed": "failed"}}),
        "slow": action(slow, on={{"done": "done", "failed": "failed"}}),
        "done": done(),
        "failed": failed(),
    }},
    workspace=GitWorkspace(repo={repo!r}, base="main", cleanup="on_done"),
)
"""


def stage_for(
    emulator: EmulatorServer,
    tmp_path: Path,
    database: Db,
    *,
    expect: int,
    after_edit: str,
    **extra: str,
) -> tuple[Stage, Path, Path]:
    origin = make_repo(tmp_path / "project", {"shared.txt": "original\n"})
    marks = tmp_path / "marks"
    marks.mkdir()
    flows = tmp_path / "flows"
    flows.mkdir()
    source = FLOW.format(marks=str(marks), expect=expect, after_edit=after_edit, repo=str(origin))
    (flows / "coder.py").write_text(textwrap.dedent(source))
    stage = Stage.create(emulator, tmp_path, database.url, workflows=flows, **IDENTITY, **extra)
    return stage, origin, marks


def test_two_cards_edit_the_same_file_each_in_its_own_worktree(
    emulator: EmulatorServer, tmp_path: Path, database: Db
) -> None:
    stage, origin, marks = stage_for(emulator, tmp_path, database, expect=2, after_edit="done")
    pages = [stage.add_card(title, "coder") for title in ("Card A", "Card B")]
    worker = Worker(stage, "solo")
    try:
        # the card shows Done once its effects are delivered, which may be before the
        # tick has cleaned its worktree up: wait for both
        wait_for(
            lambda: (
                stage.all_terminal(pages)
                and [r["workspace_state"] for r in database.runs()] == ["removed", "removed"]
            ),
            90,
            "both cards to finish and their worktrees to be removed",
            explain=lambda: f"{database.statuses()}\n{worker.logs()[-3000:]}",
        )
    finally:
        worker.kill()
    assert [stage.column(p) for p in pages] == ["Done", "Done"]
    runs = database.runs()
    assert len(runs) == 2
    paths = {r["workspace_path"] for r in runs}
    assert len(paths) == 2 and None not in paths  # never one checkout for two cards
    assert len(list(marks.glob("edit-*"))) == 2
    made = {r["workspace_branch"] for r in runs}
    assert made <= set(branches(origin)) and len(made) == 2
    titles = {"Card A", "Card B"}
    for branch in made:
        subject = log(origin, branch)[0]
        title = subject.removeprefix("edit for ")
        assert title in titles and log(origin, branch)[1:] == ["initial"]
        assert show(origin, branch, "shared.txt") == f"edited for {title}"
        titles.discard(title)
    assert show(origin, "main", "shared.txt") == "original"
    for r in runs:  # done and clean: removed, the branch keeps the commit
        assert r["workspace_state"] == "removed" and not Path(r["workspace_path"]).exists()
    stage.close()


def test_a_takeover_after_a_sigkill_continues_in_the_same_worktree(
    emulator: EmulatorServer, tmp_path: Path, database: Db
) -> None:
    stage, origin, marks = stage_for(
        emulator, tmp_path, database, expect=1, after_edit="slow", NFACTORY_LEASE_SECONDS="2"
    )
    page = stage.add_card("Long job", "coder")
    first = Worker(stage, "first")
    try:
        wait_for(
            lambda: (marks / "slow-first").exists(),
            60,
            "the first worker's slow agent",
            explain=first.logs,
        )
    finally:
        first.kill()  # SIGKILL mid-agent: no cleanup, no release
    where = json.loads((marks / "slow-first").read_text())["workspace"]
    assert Path(where, "shared.txt").read_text() == "edited for Long job\n"

    second = Worker(stage, "second")
    try:
        wait_for(
            lambda: stage.column(page) == "Done",
            60,
            "the second worker to finish the card",
            explain=lambda: f"{database.statuses()}\n{second.logs()[-3000:]}",
        )
    finally:
        second.kill()
    assert json.loads((marks / "slow-second").read_text())["workspace"] == where
    (run,) = database.runs()
    assert run["workspace_path"] == where
    # the first worker's commit and the second's, on the run's one branch
    assert log(origin, run["workspace_branch"]) == ["finish", "edit for Long job", "initial"]
    stage.close()
