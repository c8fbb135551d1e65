"""Each bundled workflow, run end to end by the engine on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.board_protocol import Reply
from factory.clock import FakeClock
from factory.engine import Engine, EngineConfig
from factory.loader import load_factories
from factory.store import repo
from factory.store.db import Database, open_database

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Database, Engine]:
    catalog = load_factories([WORKFLOWS])
    assert not catalog.errors, catalog.errors
    db = open_database(f"sqlite:///{tmp_path / 'w.db'}")
    return db, Engine(db, catalog.factories, EngineConfig(worker_id="t"), FakeClock())


def card(db: Database, factory: str, title: str, body: str = "") -> str:
    with db.begin() as conn:
        return repo.create_task(
            conn,
            factory_id=factory,
            title=title,
            prompt=body.split("\n")[0],
            context=body,
            now=FakeClock().now(),
        )


def final(db: Database, task_id: str) -> tuple[str, dict[str, object]]:
    with db.connect() as conn:
        run = repo.latest_run(conn, task_id)
        assert run is not None
        return repo.get_task(conn, task_id).status, run.ctx


@pytest.mark.parametrize(
    ("title", "body", "kind", "status"),
    [
        ("App crashes on login", "Stack trace shows an error", "bug", "done"),
        ("Dark mode", "We would like to add support for themes", "feature", "done"),
        ("How do I export?", "", "question", "done"),
        ("Lunch", "", "unclear", "blocked"),
    ],
)
async def test_triage_routes_by_kind(world, title: str, body: str, kind: str, status: str) -> None:  # type: ignore[no-untyped-def]
    db, engine = world
    tid = card(db, "triage", title, body)
    assert (await engine.tick(tid)).outcome == "finished"
    got_status, ctx = final(db, tid)
    assert (got_status, ctx["kind"]) == (status, kind)


async def test_writing_revises_asks_and_publishes_on_approval(world) -> None:  # type: ignore[no-untyped-def]
    db, engine = world
    tid = card(db, "writing", "Release notes", "Notes for 2.0")
    assert (await engine.tick(tid)).outcome == "paused"
    _, ctx = final(db, tid)
    assert "## Details" in str(ctx["draft"]) and "## Next steps" in str(ctx["draft"])
    now = FakeClock().now()
    changes = await engine.tick(tid, replies=[Reply("c1", "Mention the API change", "ann", now)])
    assert changes.outcome == "paused"  # the note is added and approval asked again
    assert "Reviewer note: Mention the API change" in str(final(db, tid)[1]["draft"])
    approved = await engine.tick(tid, replies=[Reply("c2", "approve", "bob", now)])
    assert approved.outcome == "finished"
    status, ctx = final(db, tid)
    assert status == "done" and ctx["approved_by"] == "bob"


async def test_report_runs_its_commands_and_puts_the_output_on_the_page(world) -> None:  # type: ignore[no-untyped-def]
    db, engine = world
    tid = card(db, "report", "System report")
    report = await engine.tick(tid)
    assert report.outcome == "finished"
    assert final(db, tid)[0] == "done"
    pages = [s.page for s in report.steps if s.page]
    assert "python 3." in pages[0] and "Filesystem" in pages[1]
