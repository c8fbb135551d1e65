"""Runs of a workspace factory, driven by the engine over a real database and real git."""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from factory import (
    AgentInput,
    GitWorkspace,
    action,
    command_agent,
    define_factory,
    done,
    failed,
    feedback,
    worktrees,
)
from factory.board_protocol import Reply
from factory.clock import FakeClock
from factory.dsl import Factory
from factory.store import intake as intake_store
from factory.store import repo
from factory.store.db import Database
from factory.store.tables import outbox
from tests.engine.helpers import make_engine, new_task, run_of, task
from tests.workspaces.gitrepo import branches, git, log, make_repo, show


def reply(text: str) -> Reply:
    return Reply("c1", text, "ann", FakeClock().now())


def commit_agent(name: str = "notes.txt"):  # type: ignore[no-untyped-def]
    def work(inp: AgentInput) -> dict[str, Any]:
        assert inp.workspace is not None
        (inp.workspace / name).write_text(f"{inp.title}\n")
        git(inp.workspace, "add", name)
        git(inp.workspace, "commit", "-q", "-m", f"work for {inp.title}")
        return {"status": "done", "data": {"where": str(inp.workspace)}}

    return work


def one_step(agent: Any, repo_path: Path, cleanup: str = "on_done", fid: str = "ws") -> Factory:
    return define_factory(
        id=fid,
        start="work",
        states={
            "work": action(agent, on={"done": "done", "failed": "failed"}),
            "done": done(),
            "failed": failed(),
        },
        workspace=GitWorkspace(repo=str(repo_path), base="main", cleanup=cleanup),  # type: ignore[arg-type]
    )


def exists(path: Path) -> bool:
    return path.exists()


def card_log(db: Database, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    """What the card will show: every effect queued for it, delivered or not yet."""
    with db.connect() as conn:
        rows = conn.execute(
            select(outbox.c.kind, outbox.c.payload)
            .where(outbox.c.task_id == task_id)
            .order_by(outbox.c.id)
        )
        return [(r.kind, r.payload) for r in rows]


def log_lines(db: Database, task_id: str) -> list[str]:
    return [str(p["line"]) for kind, p in card_log(db, task_id) if kind == "log"]


async def test_each_run_works_in_its_own_worktree_and_keeps_its_commits(
    db: Database, tmp_path: Path
) -> None:
    origin = make_repo(tmp_path / "project", {"notes.txt": "base\n"})
    engine = make_engine(db, one_step(commit_agent(), origin))
    first = new_task(db, "ws", "Fix the login")
    second = new_task(db, "ws", "Fix the login")  # the same title: still its own branch

    reports = await asyncio.gather(engine.tick(first), engine.tick(second))

    assert [r.status for r in reports] == ["done", "done"]
    made = [b for b in branches(origin) if b.startswith("nfactory/")]
    assert len(made) == 2 and all(b.startswith("nfactory/fix-the-login-") for b in made)
    for b in made:
        assert log(origin, b) == ["work for Fix the login", "initial"]
    assert show(origin, "main", "notes.txt") == "base"  # the main checkout untouched
    for t in (first, second):
        run = run_of(db, t)
        where = Path(run.ctx["where"])
        assert where.parent == origin / ".nfactory" / "workspaces"
        assert run.workspace_path == str(where) and run.workspace_state == "removed"
        assert not exists(where)  # done and clean: removed, its branch kept
        lines = log_lines(db, t)
        assert any("workspace" in line and run.workspace_branch in line for line in lines)
        assert any(f"branch `{run.workspace_branch}` keeps its commits" in line for line in lines)
    # the worktrees folder is ignored by the repository itself
    assert git(origin, "status", "--porcelain") == ""


async def test_command_agent_runs_in_the_worktree_unless_given_a_cwd(
    db: Database, tmp_path: Path
) -> None:
    origin = make_repo(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    flow = define_factory(
        id="cmd",
        start="here",
        states={
            "here": action(command_agent(["pwd"]), on={"done": "there", "failed": "failed"}),
            "there": action(
                command_agent(["pwd"], cwd=elsewhere), on={"done": "done", "failed": "failed"}
            ),
            "done": done(),
            "failed": failed(),
        },
        workspace=GitWorkspace(repo=str(origin), cleanup="never"),
    )
    engine = make_engine(db, flow)
    t = new_task(db, "cmd", "Where am I")
    assert (await engine.tick(t)).status == "done"
    run = run_of(db, t)
    pages = [str(p["markdown"]) for kind, p in card_log(db, t) if kind == "page"]
    assert run.workspace_path and run.workspace_path in pages[0]
    assert str(elsewhere) in pages[1]
    assert run.workspace_state == "kept" and exists(Path(run.workspace_path))


async def test_the_same_run_keeps_its_worktree_across_a_feedback_pause(
    db: Database, tmp_path: Path
) -> None:
    origin = make_repo(tmp_path / "project")
    seen: list[Path | None] = []

    def draft(inp: AgentInput) -> dict[str, Any]:
        seen.append(inp.workspace)
        assert inp.workspace is not None
        if "human_feedback" not in inp.ctx:
            (inp.workspace / "draft.txt").write_text("first\n")  # uncommitted, left for later
            return {"status": "feedback", "message": "ok?"}
        assert (inp.workspace / "draft.txt").read_text() == "first\n"
        git(inp.workspace, "add", "-A")
        git(inp.workspace, "commit", "-q", "-m", "draft")
        return {"status": "done"}

    flow = define_factory(
        id="fb",
        start="draft",
        states={
            "draft": action(draft, on={"done": "done", "failed": "failed", "feedback": "ask"}),
            "ask": feedback(),
            "done": done(),
            "failed": failed(),
        },
        workspace=GitWorkspace(repo=str(origin)),
    )
    t = new_task(db, "fb", "Pause me")
    assert (await make_engine(db, flow, worker="w1").tick(t)).outcome == "paused"
    # another worker (a restart) resumes it with the reply
    report = await make_engine(db, flow, worker="w2").tick(t, replies=[reply("fine")])
    assert report.status == "done"
    assert len(seen) == 2 and seen[0] == seen[1]
    assert log(origin, run_of(db, t).workspace_branch or "") == ["draft", "initial"]


async def test_a_vanished_worktree_comes_back_on_its_branch(db: Database, tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "project")

    def step(inp: AgentInput) -> dict[str, Any]:
        assert inp.workspace is not None
        if "human_feedback" not in inp.ctx:
            (inp.workspace / "a.txt").write_text("a\n")
            git(inp.workspace, "add", "-A")
            git(inp.workspace, "commit", "-q", "-m", "a")
            return {"status": "feedback"}
        assert (inp.workspace / "a.txt").read_text() == "a\n"  # the branch's commit is there
        return {"status": "done"}

    flow = define_factory(
        id="vanish",
        start="s",
        states={
            "s": action(step, on={"done": "done", "failed": "failed", "feedback": "ask"}),
            "ask": feedback(),
            "done": done(),
            "failed": failed(),
        },
        workspace=GitWorkspace(repo=str(origin), cleanup="never"),
    )
    engine = make_engine(db, flow)
    t = new_task(db, "vanish", "Vanishing act")
    await engine.tick(t)
    where = Path(run_of(db, t).workspace_path or "")
    shutil.rmtree(where)
    assert (await engine.tick(t, replies=[reply("go on")])).status == "done"
    assert any("brought back from its branch" in line for line in log_lines(db, t))

    # folder and branch both gone: said so, Blocked, never silently restarted from base
    t2 = new_task(db, "vanish", "Gone for good")
    await engine.tick(t2)
    run = run_of(db, t2)
    shutil.rmtree(run.workspace_path or "")
    git(origin, "worktree", "prune")
    git(origin, "branch", "-D", run.workspace_branch or "")
    report = await engine.tick(t2, replies=[reply("go on")])
    assert report.status == "blocked"
    assert "are gone" in (task(db, t2).last_error or "")


async def test_a_requeued_card_gets_a_fresh_worktree_from_base(
    db: Database, tmp_path: Path
) -> None:
    origin = make_repo(tmp_path / "project", {"notes.txt": "base\n"})
    clock = FakeClock()
    engine = make_engine(db, one_step(commit_agent(), origin, cleanup="never"), clock=clock)
    t = new_task(db, "ws", "Again")
    await engine.tick(t)
    first = run_of(db, t)
    clock.advance(60)
    assert intake_store.requeue_card(
        db, t, factory_id="ws", title="Again", prompt="", context="", now=FakeClock().now()
    )
    assert (await engine.tick(t)).status == "done"
    second = run_of(db, t)
    assert second.id != first.id
    assert second.workspace_branch != first.workspace_branch
    assert second.workspace_path != first.workspace_path
    # from base, not from the first run's branch
    assert log(origin, second.workspace_branch or "") == ["work for Again", "initial"]


@pytest.mark.parametrize(
    ("policy", "agent_status", "removed"),
    [
        ("on_done", "done", True),
        ("on_done", "failed", False),
        ("always", "failed", True),
        ("never", "done", False),
    ],
)
async def test_cleanup_follows_the_policy(
    db: Database, tmp_path: Path, policy: str, agent_status: str, removed: bool
) -> None:
    origin = make_repo(tmp_path / "project")
    flow = one_step(lambda inp: {"status": agent_status}, origin, cleanup=policy)
    t = new_task(db, "ws", "Policy")
    await make_engine(db, flow).tick(t)
    run = run_of(db, t)
    assert exists(Path(run.workspace_path or "")) is not removed
    assert run.workspace_state == ("removed" if removed else "kept")
    assert (run.workspace_branch or "") in branches(origin)  # the branch always stays


async def test_a_dirty_worktree_is_kept_and_the_card_says_so(db: Database, tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "project")

    def scribble(inp: AgentInput) -> dict[str, Any]:
        assert inp.workspace is not None
        (inp.workspace / "unsaved.txt").write_text("work in progress\n")
        return {"status": "done"}

    t = new_task(db, "ws", "Scribbler")
    await make_engine(db, one_step(scribble, origin, cleanup="always")).tick(t)
    run = run_of(db, t)
    where = Path(run.workspace_path or "")
    assert (where / "unsaved.txt").read_text() == "work in progress\n"
    assert run.workspace_state == "kept"
    assert any("it has uncommitted changes" in line for line in log_lines(db, t))


async def test_concurrent_worktree_creation_is_safe(db: Database, tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "project")
    engine = make_engine(db, one_step(commit_agent(), origin, cleanup="never"), agent_threads=8)
    ids = [new_task(db, "ws", f"Card {i}") for i in range(8)]
    reports = await asyncio.gather(*(engine.tick(t) for t in ids))
    assert [r.status for r in reports] == ["done"] * 8
    paths = {run_of(db, t).workspace_path for t in ids}
    assert len(paths) == 8  # never shared


def test_git_retries_while_another_process_holds_a_lock(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "project")
    lock = origin / ".git" / "refs" / "heads" / "held.lock"
    lock.write_text("")
    threading.Timer(0.5, lock.unlink).start()  # the other git process finishes
    worktrees.git(["branch", "held", "main"], origin)
    assert "held" in branches(origin)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("not_a_repo", "is not a git repository"),
        ("no_commits", "has no commits yet"),
        ("bad_base", "is not a commit"),
        ("missing", "does not exist"),
        ("oserror", "cannot make the workspace"),
    ],
)
async def test_each_problem_blocks_the_run_with_its_reason(
    db: Database, tmp_path: Path, setup: str, reason: str
) -> None:
    where = tmp_path / "project"
    base = "main"
    if setup == "not_a_repo":
        where.mkdir()
    elif setup == "no_commits":
        where.mkdir()
        git(where, "init", "-q")
    elif setup == "bad_base":
        make_repo(where)
        base = "no-such-branch"
    elif setup == "oserror":
        make_repo(where)
        (where / ".nfactory").write_text("a file where a folder should be")
    ran: list[str] = []
    flow = define_factory(
        id="broken",
        start="work",
        states={
            "work": action(
                lambda inp: ran.append("x") or {"status": "done"},
                on={"done": "done", "failed": "failed"},
            ),
            "done": done(),
            "failed": failed(),
        },
        workspace=GitWorkspace(repo=str(where), base=base),
    )
    t = new_task(db, "broken", "Doomed")
    report = await make_engine(db, flow).tick(t)
    assert report.status == "blocked"
    assert ran == []  # no agent ran without its workspace
    error = task(db, t).last_error or ""
    assert error.startswith("workspace: ") and reason in error, error
    comments = [str(p["text"]) for kind, p in card_log(db, t) if kind == "comment"]
    assert any(reason in c for c in comments), comments


@pytest.mark.parametrize(
    ("policy", "dirty", "state"),
    [
        ("always", False, "removed"),
        ("always", True, "kept"),
        ("on_done", False, "kept"),
    ],
)
async def test_a_cancelled_run_ends_through_the_cleanup_policy(
    db: Database, tmp_path: Path, policy: str, dirty: bool, state: str
) -> None:
    """Cancelling mid-command stops the command in the run's worktree, then the worktree is
    handled as at any other end: removed when the policy says so, kept when it holds work."""
    origin = make_repo(tmp_path / "project")
    started = tmp_path / "started"
    script = (
        "import pathlib, time\n"
        + ("pathlib.Path('half-done.txt').write_text('half')\n" if dirty else "")
        + f"pathlib.Path({str(started)!r}).write_text('yes')\n"
        + "time.sleep(60)\n"
    )
    flow = one_step(command_agent([sys.executable, "-c", script]), origin, cleanup=policy)
    t = new_task(db, "ws", "Cancel me")
    engine = make_engine(db, flow)

    async def cancel_when_started() -> None:
        for _ in range(1500):
            if started.exists():
                break
            await asyncio.sleep(0.02)
        with db.begin() as conn:
            assert repo.request_cancel(conn, t, FakeClock().now(), by="the test")

    canceller = asyncio.create_task(cancel_when_started())
    report = await asyncio.wait_for(engine.tick(t), 60)
    await canceller
    assert report.status == "cancelled"
    run = run_of(db, t)
    assert run.workspace_state == state
    assert exists(Path(run.workspace_path or "")) is (state == "kept")
    if dirty:
        assert any("it has uncommitted changes" in line for line in log_lines(db, t))
