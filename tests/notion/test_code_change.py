"""The bundled coding workflow, card to commit, with a person reviewing in the comments.

Real git repositories in a temporary folder, the real stand-in agent as a
subprocess, the real notion-client against the emulator over HTTP.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from factory.board_protocol import Reply
from factory.clock import FakeClock
from factory.dsl import Factory
from factory.engine import Engine, EngineConfig
from factory.loader import load_factories
from factory.store import repo
from factory.store.db import Database, open_database
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.world import World

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "code_change.py"
FRESH_IDENTITY = "notion-factory <notion-factory@localhost>"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


@pytest.fixture
def fresh_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine where git knows nobody: no global or system config, no identity in env."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("AUTHOR", "COMMITTER"):
        for part in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{name}_{part}", raising=False)
    for name in ("COMMAND", "TEST_COMMAND", "PUSH", "REPO", "TIMEOUT_SECONDS"):
        monkeypatch.delenv(f"NFACTORY_CODER_{name}", raising=False)


@pytest.fixture
def project(tmp_path: Path, fresh_machine: None) -> Path:
    """The team's repository: one commit on main."""
    path = tmp_path / "project"
    path.mkdir()
    git(path, "init", "--quiet", "--initial-branch=main")
    (path / "README.md").write_text("# Project\n")
    git(path, "add", "README.md")
    git(path, "-c", "user.name=Ann", "-c", "user.email=ann@example.com", "commit", "-qm", "start")
    return path


def code_change(monkeypatch: pytest.MonkeyPatch, project: Path, **env: str) -> Factory:
    """The workflow as the worker loads it, with its settings from the environment."""
    monkeypatch.setenv("NFACTORY_CODER_REPO", str(project))
    for name, value in env.items():
        monkeypatch.setenv(f"NFACTORY_CODER_{name.upper()}", value)
    catalog = load_factories([WORKFLOW])
    assert not catalog.errors, catalog.errors
    return catalog.factories["code_change"]


@pytest.fixture
async def world_for(
    emulator: EmulatorServer, tmp_path: Path
) -> AsyncIterator[type[World] | object]:
    made: list[World] = []

    async def make(factory: Factory) -> World:
        w = await World(emulator, str(tmp_path / "db.sqlite"), {factory.id: factory}).open()
        made.append(w)
        return w

    yield make
    for w in made:
        await w.close()


def bot_comments(world: World, page: str) -> list[str]:
    return [text for who, text in world.comments(page) if who == "bot"]


def run_ctx(world: World, page: str) -> dict[str, object]:
    with world.db.connect() as conn:
        run = repo.latest_run(conn, world.task(page).id)
    assert run is not None
    return dict(run.ctx)


async def asked(world: World, page: str, n: int) -> None:
    """Until the bot has asked its n-th question and the card waits in Feedback."""
    await world.until(
        lambda: world.column(page) == "Feedback" and len(bot_comments(world, page)) >= n
    )


async def test_revise_then_approve_commits_on_the_runs_branch(
    monkeypatch: pytest.MonkeyPatch, project: Path, world_for
) -> None:  # type: ignore[no-untyped-def]
    world: World = await world_for(code_change(monkeypatch, project))
    page = await world.add_card_with_body(
        "Add a greeting", "code_change", "create greeting.txt with Hello"
    )
    await asked(world, page, 1)
    question = bot_comments(world, page)[0]
    assert "Round 1 of 3" in question and "revise: <what to change>" in question
    assert "1 file changed" in question and "tests passed" in question
    md = world.markdown(page)
    assert "## Plan" in md and "greeting.txt | 1 +" in md and "+Hello" in md

    world.comment(page, "revise: append Bye to greeting.txt")
    await asked(world, page, 2)
    assert "Round 2 of 3" in bot_comments(world, page)[1]
    assert "+Bye" in world.markdown(page)
    ctx = run_ctx(world, page)
    assert ctx["round"] == 2 and ctx["revise_note"] == "append Bye to greeting.txt"
    assert str(ctx["plan"]).startswith("implement, test, review, commit on nfactory/")

    world.comment(page, "approve")
    await world.until(lambda: world.column(page) == "Done")
    ctx = run_ctx(world, page)
    branch, commit = str(ctx["branch"]), str(ctx["commit"])
    assert branch.startswith("nfactory/add-a-greeting-")
    assert git(project, "rev-parse", branch).strip() == commit
    assert git(project, "show", f"{branch}:greeting.txt") == "Hello\nBye\n"
    subject, author = git(project, "log", "-1", "--format=%s%n%an <%ae>", branch).splitlines()
    assert subject == "Add a greeting"
    assert author == FRESH_IDENTITY  # git knew nobody; the commit still happened
    assert git(project, "rev-parse", "main") == git(project, "rev-parse", f"{branch}~1")
    assert not (project / "greeting.txt").exists()  # the team's checkout is untouched
    assert f"committed {commit[:12]} on {branch}" in world.markdown(page)
    assert ctx["pushed"] is False


async def test_a_reply_that_is_neither_approve_nor_revise_is_asked_again(
    monkeypatch: pytest.MonkeyPatch, project: Path, world_for
) -> None:  # type: ignore[no-untyped-def]
    world: World = await world_for(code_change(monkeypatch, project))
    page = await world.add_card_with_body("Notes", "code_change", "Think about caching")
    await asked(world, page, 1)
    assert "NOTES.md" in world.markdown(page)  # the stand-in noted what it cannot do
    world.comment(page, "Looks fine I guess, not sure")
    await asked(world, page, 2)
    assert bot_comments(world, page)[1] == "Please reply with approve or revise: <what to change>."
    assert world.task(page).status == "feedback"
    world.comment(page, "Approve.")
    await world.until(lambda: world.column(page) == "Done")
    branch = str(run_ctx(world, page)["branch"])
    assert "Think about caching" in git(project, "show", f"{branch}:NOTES.md")


async def test_push_sends_the_branch_to_the_remote(
    monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path, world_for
) -> None:  # type: ignore[no-untyped-def]
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    world: World = await world_for(code_change(monkeypatch, project, push="1"))
    page = await world.add_card_with_body("Ship it", "code_change", "create ship.txt with yes")
    await asked(world, page, 1)
    world.comment(page, "approve")
    await world.until(lambda: world.column(page) == "Done")
    ctx = run_ctx(world, page)
    assert ctx["pushed"] is True
    assert git(remote, "rev-parse", str(ctx["branch"])).strip() == ctx["commit"]
    assert "and pushed to origin" in world.markdown(page)


async def test_a_failed_push_fails_the_card_saying_so(
    monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path, world_for
) -> None:  # type: ignore[no-untyped-def]
    git(project, "remote", "add", "origin", str(tmp_path / "no-such-remote.git"))
    world: World = await world_for(code_change(monkeypatch, project, push="1"))
    page = await world.add_card_with_body("Ship it", "code_change", "create ship.txt with yes")
    await asked(world, page, 1)
    world.comment(page, "approve")
    await world.until(lambda: world.column(page) == "Failed")
    error = world.prop_text(page, "Error")
    assert "git push to 'origin' failed" in error and "committed" in error
    branch = str(run_ctx(world, page)["branch"])
    assert git(project, "show", f"{branch}:ship.txt") == "yes\n"  # the commit is kept


# -- the engine alone: limits and misconfiguration, with replies handed in --------------


def engine_for(factory: Factory, tmp_path: Path) -> tuple[Database, Engine]:
    db = open_database(f"sqlite:///{tmp_path / 'engine.db'}")
    return db, Engine(db, {factory.id: factory}, EngineConfig(worker_id="t"), FakeClock())


def new_card(db: Database, title: str, body: str) -> str:
    with db.begin() as conn:
        return repo.create_task(
            conn,
            factory_id="code_change",
            title=title,
            prompt=body.split("\n")[0],
            context=body,
            now=FakeClock().now(),
        )


def last_run(db: Database, task_id: str) -> repo.RunRow:
    with db.connect() as conn:
        run = repo.latest_run(conn, task_id)
    assert run is not None
    return run


async def test_revise_past_the_last_round_fails_the_card_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path
) -> None:
    db, engine = engine_for(code_change(monkeypatch, project), tmp_path)
    task = new_card(db, "Count", "create n.txt with 1")
    assert (await engine.tick(task)).outcome == "paused"
    for n in (2, 3):
        reply = Reply(f"c{n}", f"revise: append {n} to n.txt", "ann", FakeClock().now())
        assert (await engine.tick(task, replies=[reply])).outcome == "paused"
        assert last_run(db, task).ctx["round"] == n
    last = Reply("c4", "revise: append 4 to n.txt", "ann", FakeClock().now())
    report = await engine.tick(task, replies=[last])
    assert report.outcome == "finished"
    run = last_run(db, task)
    assert run.status == "failed"
    assert "revise asked after round 3 of 3: no rounds left" in str(run.ctx["last_error"])
    assert "append 4 to n.txt" in str(run.ctx["last_error"])
    worktree = Path(str(run.workspace_path))
    assert (worktree / "n.txt").read_text() == "1\n2\n3\n"  # kept, with its work, for a look


async def test_a_failing_test_command_is_shown_to_the_reviewer(
    monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path
) -> None:
    factory = code_change(monkeypatch, project, test_command="git diff --check HEAD")
    db, engine = engine_for(factory, tmp_path)
    task = new_card(db, "Spaces", 'create s.txt with "trailing space "')
    report = await engine.tick(task)
    assert report.outcome == "paused"
    question = report.steps[-1].message
    assert "TESTS FAILED" in question and "git exited with 2" in question


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"command": "no-such-coding-agent -p"}, "NFACTORY_CODER_COMMAND: 'no-such-coding-agent'"),
        ({"test_command": "no-such-test-runner"}, "NFACTORY_CODER_TEST_COMMAND: 'no-such-test"),
    ],
)
async def test_a_command_that_does_not_exist_fails_the_card_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path, env: dict[str, str], says: str
) -> None:
    db, engine = engine_for(code_change(monkeypatch, project, **env), tmp_path)
    task = new_card(db, "Anything", "create a.txt with a")
    assert (await engine.tick(task)).outcome == "finished"
    run = last_run(db, task)
    assert run.status == "failed" and says in str(run.ctx["last_error"])


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("PUSH", "maybe", "NFACTORY_CODER_PUSH: "),
        ("COMMAND", 'claude -p "unclosed', "NFACTORY_CODER_COMMAND: cannot be split"),
        ("TIMEOUT_SECONDS", "0", "NFACTORY_CODER_TIMEOUT_SECONDS: "),
        ("TEST_COMMAND", "  ", "NFACTORY_CODER_TEST_COMMAND: is empty"),
    ],
)
def test_a_bad_setting_stops_the_workflow_loading_naming_it(
    monkeypatch: pytest.MonkeyPatch, fresh_machine: None, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(f"NFACTORY_CODER_{name}", value)
    catalog = load_factories([WORKFLOW])
    assert "code_change" not in catalog.factories
    (problem,) = catalog.errors
    assert says in problem.message and "\n" not in problem.message


async def test_the_agent_and_the_tests_never_see_the_notion_secrets(
    monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTION_TOKEN", "ntn_not_for_agents_0123456789")
    monkeypatch.setenv("NOTION_WEBHOOK_SECRET", "whsec_not_for_agents")
    names = "('NOTION_TOKEN', 'NOTION_WEBHOOK_SECRET')"
    show = f"import os; print('seen:', [os.environ.get(k, '') for k in {names}])"
    command = shlex.join([sys.executable, "-c", show, "--"])  # the prompt lands after --
    factory = code_change(monkeypatch, project, command=command, test_command=command)
    db, engine = engine_for(factory, tmp_path)
    report = await engine.tick(new_card(db, "Look around", "print the environment"))
    pages = "\n".join(step.page for step in report.steps)
    assert pages.count("seen: ['', '']") == 2, pages  # the agent's page and the tests' page
    assert "not_for_agents" not in pages


def test_env_example_documents_every_coder_setting_with_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_machine: None
) -> None:
    from workflows.code_change import CoderSettings, load_settings

    example = (WORKFLOW.parents[1] / ".env.example").read_text()
    readme = (WORKFLOW.parents[1] / "README.md").read_text()
    for name in CoderSettings.model_fields:
        assert f"NFACTORY_CODER_{name.upper()}=" in example, name
        assert f"`NFACTORY_CODER_{name.upper()}`" in readme, name
    (tmp_path / ".env").write_text(example)
    monkeypatch.chdir(tmp_path)
    assert load_settings() == CoderSettings.model_construct()  # the documented defaults


async def test_git_identity_from_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Bea")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "bea@example.com")
    db, engine = engine_for(code_change(monkeypatch, project), tmp_path)
    task = new_card(db, "Signed", "create s.txt with s")
    assert (await engine.tick(task)).outcome == "paused"
    reply = Reply("c1", "approve", "ann", FakeClock().now())
    assert (await engine.tick(task, replies=[reply])).outcome == "finished"
    run = last_run(db, task)
    assert run.status == "done", run.ctx.get("last_error")
    branch = str(run.ctx["branch"])
    who = git(project, "log", "-1", "--format=%an <%ae>|%cn <%ce>", branch).strip()
    assert who == f"Bea <bea@example.com>|{FRESH_IDENTITY}"
