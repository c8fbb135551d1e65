"""The flow-style workflow (workflows/writing_flow.py) through the journeys the state-table
factories go through: feedback (a rejected reply asked again), retries, loop caps and a
crash takeover, on SQLite and PostgreSQL, by the real engine."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from factory import AgentInput
from factory.board_protocol import Reply
from factory.clock import SystemClock
from factory.dsl import Factory
from factory.engine import Engine, EngineConfig
from factory.store import repo
from factory.store.db import Database
from factory.store.db import make_engine as open_engine
from factory.store.leases import holder
from factory.store.local_comments import unconsumed_replies
from factory.testing import FactoryHarness
from tests.engine.helpers import new_task, run_of
from tests.engine.test_leases import SkewedClock
from workflows import writing_flow
from workflows.writing_flow import FACTORY, QUESTION

REPO = Path(__file__).resolve().parents[2]
ASK_AGAIN = "Please reply with approve or revise."


def harness(db: Database, **agents: Any) -> FactoryHarness:
    return FactoryHarness(FACTORY, db=db, agents=agents)


def consumed(db: Database, task_id: str) -> set[str]:
    with db.connect() as conn:
        return repo.consumed_comment_ids(conn, task_id)


# -- feedback ---------------------------------------------------------------------------


def test_a_rejected_reply_is_asked_again_and_every_reply_is_read_once(db: Database) -> None:
    card = harness(db).card("Release notes", context="Notes for 2.0").run()
    assert (card.status, card.state, card.question) == ("feedback", "verdict", QUESTION)
    assert "## Next steps" in card.page  # the polished draft, shown for review

    card.reply("maybe later?").run()
    assert (card.status, card.state) == ("feedback", "verdict")
    assert card.question == ASK_AGAIN  # a new question comment, with the reason
    assert card.comments == [QUESTION, ASK_AGAIN]
    assert unconsumed_replies(db, card.id) == []  # the rejected reply is used up

    card.reply("Revise: mention the migration").run()
    assert card.question == QUESTION  # the next round asks afresh
    assert "> Reviewer note: mention the migration" in card.ctx["draft"]

    card.reply("approve", author="ann").run()
    assert card.status == "done" and card.question is None
    assert card.ctx["approved_by"] == "ann"
    assert card.page.endswith("**Published** (approved by ann).")
    replies = [t for t in card.transitions if t.reason == "feedback.reply"]
    assert len(replies) == 3 == len(consumed(db, card.id))  # three replies, each read once
    assert [t.message for t in card.transitions if t.from_state == "ask_verdict"] == [
        QUESTION,
        ASK_AGAIN,
        "verdict: revise",
        QUESTION,
        "verdict: approve",
    ]
    assert card.path[-6:] == ["ask_verdict", "route", "approver", "rounds", "publish", "done"]


def test_an_ask_again_round_takes_the_same_words_twice(db: Database) -> None:
    """Replies are told apart by the run, not by their text: two equal replies both count."""
    card = harness(db).card("Notes").run()
    for _ in range(2):
        card.reply("revise add a table").run()
        assert card.question == QUESTION
    assert card.ctx["draft"].count("> Reviewer note: add a table") == 2
    assert card.path.count("note") == 2


# -- retries ----------------------------------------------------------------------------


def flaky(failures: int) -> Any:
    calls: list[int] = []

    def agent(inp: AgentInput) -> dict[str, Any]:
        calls.append(inp.attempt)
        if len(calls) <= failures:
            raise ConnectionError(f"model unavailable (attempt {inp.attempt})")
        return writing_flow.draft(inp)

    return agent


def test_a_flaky_step_is_retried_with_its_backoff(db: Database) -> None:
    card = harness(db, draft=flaky(2)).card("Release notes").run()
    assert card.path[:4] == ["draft", "draft", "draft", "polish"]
    assert [t.reason for t in card.transitions[:2]] == ["action.failed.retry"] * 2
    assert card.backoffs == [0.2, 0.4]  # step(draft, retries=Retries(max=2, ...))
    assert card.waiting_for_reply


def test_a_step_out_of_retries_fails_the_card_with_its_error(db: Database) -> None:
    card = harness(db, draft=flaky(3)).card("Notes").run()
    assert card.status == "failed"
    assert card.path == ["draft", "draft", "draft", "failed"]
    assert card.transitions[-1].reason == "action.failed.exhausted"
    assert card.error is not None and "model unavailable (attempt 3)" in card.error


# -- loop caps --------------------------------------------------------------------------


def test_the_polish_loop_stops_at_its_cap_and_the_flow_goes_on(db: Database) -> None:
    def never_complete(inp: AgentInput) -> dict[str, Any]:
        return {"status": "done", "data": {"draft": "# still short"}, "message": "no change"}

    card = harness(db, review=never_complete).card("N").run()
    assert card.path.count("review") == 4  # loop(..., max_iterations=4)
    assert next(t for t in card.transitions if t.reason == "loop.exhausted").to_state == "rounds"
    assert (card.status, card.state) == ("feedback", "verdict")


def test_three_rounds_of_revisions_block_the_card(db: Database) -> None:
    card = harness(db).card("Notes").run()
    for n in range(3):
        card.reply(f"revise round {n}").run()
    assert card.status == "blocked"
    assert card.path.count("note") == 3 and card.path[-2:] == ["rounds", "blocked"]
    assert card.transitions[-1].reason == "loop.exhausted"


# -- crash takeover ---------------------------------------------------------------------


def hanging_factory() -> Factory:
    """writing_flow whose second review hangs when NF_TEST_HANG is set (the doomed worker)."""

    def review(inp: AgentInput) -> dict[str, object]:
        if os.environ.get("NF_TEST_HANG") and inp.ctx.get("revisions") == 1:
            time.sleep(120)
        return writing_flow.review(inp)

    state = dataclasses.replace(FACTORY.states["review"], agent=review)  # type: ignore[type-var]
    return dataclasses.replace(FACTORY, states={**FACTORY.states, "review": state})


def _doomed_worker() -> None:
    url, task_id = sys.argv[1], sys.argv[2]
    config = EngineConfig(worker_id="doomed", lease_seconds=2.0)
    engine = Engine(open_engine(url), {FACTORY.id: hanging_factory()}, config, SystemClock())
    asyncio.run(engine.tick(task_id))


TAKEN_OVER_PATH = [
    ("draft", "polish"),
    ("polish", "review"),
    ("review", "polish"),
    ("polish", "review"),
    ("review", "polish"),
    ("polish", "rounds"),
    ("rounds", "show"),
    ("show", "ask_verdict"),
    ("ask_verdict", "verdict"),
    ("verdict", "ask_verdict"),
    ("ask_verdict", "route"),
    ("route", "approver"),
    ("approver", "rounds"),
    ("rounds", "publish"),
    ("publish", "done"),
]


def test_a_worker_killed_mid_flow_is_taken_over_and_the_flow_finishes(
    db: Database, db_url: str
) -> None:
    tid = new_task(db, FACTORY.id, "Release notes")
    code = "from tests.engine.test_flow_journeys import _doomed_worker; _doomed_worker()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, db_url, tid],
        cwd=REPO,
        env={**os.environ, "NF_TEST_HANG": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while len(history(db, tid)) < 4:  # up to the second review, which hangs
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the doomed worker never reached the review"
            time.sleep(0.02)
        time.sleep(0.1)
        assert holder(db, tid)[0] == "doomed"
    finally:
        proc.kill()  # SIGKILL inside the agent: lease held, nothing released
        proc.communicate()

    # a worker whose clock says the 2 s lease is over takes the card at once
    config = EngineConfig(worker_id="survivor", lease_seconds=2)
    survivor = Engine(db, {FACTORY.id: FACTORY}, config, SkewedClock(4.0))
    paused = asyncio.run(survivor.tick(tid))
    assert (paused.outcome, paused.status) == ("paused", "feedback")
    assert run_of(db, tid).state_id == "verdict"
    reply = Reply("c1", "approve", "ann", SystemClock().now())
    finished = asyncio.run(survivor.tick(tid, replies=[reply]))
    assert (finished.outcome, finished.status) == ("finished", "done")

    rows = history(db, tid)
    assert [(r["from_state"], r["to_state"]) for r in rows] == TAKEN_OVER_PATH
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    workers = [r["worker_id"] for r in rows]
    assert workers == ["doomed"] * 4 + ["survivor"] * (len(rows) - 4)
    doomed_epochs = {r["epoch"] for r in rows if r["worker_id"] == "doomed"}
    assert min(r["epoch"] for r in rows[4:]) > max(doomed_epochs)  # fenced by the takeover
    assert run_of(db, tid).ctx["approved_by"] == "ann"
    assert holder(db, tid) == (None, None)


def history(db: Database, task_id: str) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return repo.history(conn, task_id)
