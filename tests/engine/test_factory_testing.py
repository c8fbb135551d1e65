"""factory.testing: a factory author's tests, written with it, on the bundled workflows."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from factory import (
    AgentInput,
    Backoff,
    Retries,
    action,
    define_factory,
    done,
    failed,
    orchestrate,
)
from factory.graph import mermaid_fence
from factory.testing import CardError, FactoryHarness
from tests.workspaces.gitrepo import IDENTITY, git, make_repo
from workflows import report, triage, writing

# -- the bundled workflows, as their authors would test them ----------------------------


def test_writing_drafts_revises_asks_and_publishes_on_approve() -> None:
    card = FactoryHarness(writing.FACTORY).card("Release notes", context="Notes for 2.0")
    card.run()
    assert card.status == "feedback" and card.waiting_for_reply
    assert card.state == "approval"
    assert card.question is not None and "Reply 'approve'" in card.question
    assert "## Next steps" in card.page  # the draft went to the page for review
    card.reply("approve", author="ann")
    card.run()
    assert card.status == "done" and not card.waiting_for_reply and card.question is None
    assert card.path == [
        "draft",
        *["polish", "review"] * 2,
        "polish",
        "ask_approval",
        "approval",
        "ask_approval",
        "publish",
        "done",
    ]
    assert card.ctx["approved_by"] == "ann"
    assert card.page.endswith("**Published** (approved by ann).")
    assert [t.reason for t in card.transitions][-4:] == [
        "action.feedback",
        "feedback.reply",
        "action.done",
        "action.done",
    ]
    assert card.log[0].endswith("run started: factory **writing**, state **draft**")


def test_writing_a_requested_change_is_taken_in_and_asked_again() -> None:
    card = FactoryHarness(writing.FACTORY).card("Release notes")
    card.run().reply("mention the migration")
    card.run()
    assert card.waiting_for_reply
    assert card.question == "I added your note to the draft. Reply 'approve' to publish it."
    assert "> Reviewer note: mention the migration" in card.ctx["draft"]
    assert card.path.count("approval") == 2
    card.reply("lgtm").run()
    assert card.status == "done"


@pytest.mark.parametrize(
    ("title", "heading", "end"),
    [
        ("Login crashes with an error", "## Bug triage", "bug"),
        ("Please add dark mode support", "## Feature brief", "feature"),
        ("How do I export?", "## Answer outline", "question"),
    ],
)
def test_triage_routes_each_kind_to_its_page(title: str, heading: str, end: str) -> None:
    card = FactoryHarness(triage.FACTORY).card(title).run()
    assert card.status == "done"
    assert card.path == ["classify", "route", end, "done"]
    assert card.page.startswith(heading)
    assert card.transitions[1].event == end and card.transitions[1].reason == "orchestrate.select"


def test_a_card_shows_its_factory_once_per_run_apart_from_the_agents_page() -> None:
    card = FactoryHarness(triage.FACTORY).card("Login crashes with an error").run()
    assert card.graphs == [mermaid_fence(triage.FACTORY, current="classify")]
    assert '["▶ classify (action)"]' in card.graphs[0]
    assert "mermaid" not in card.page  # the page is what agents wrote


def test_triage_blocks_a_card_it_cannot_classify() -> None:
    card = FactoryHarness(triage.FACTORY).card("Zzz").run()
    assert card.status == "blocked"
    assert card.path == ["classify", "route", "needs_detail"]
    assert card.ctx["kind"] == "unclear"


def test_report_puts_command_output_on_the_page() -> None:
    card = FactoryHarness(report.FACTORY).card("System report").run()
    assert card.status == "done", card.error
    assert card.path == ["platform", "disk", "done"]
    assert "python 3." in card.page and "Filesystem" in card.page


def test_code_change_commits_the_stand_in_agents_change_on_approve(tmp_path: Path) -> None:
    from workflows.code_change import CoderSettings, build_factory

    repo = make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    factory = build_factory(CoderSettings(repo=str(repo)))
    with pytest.MonkeyPatch.context() as env:
        for name, value in IDENTITY.items():
            env.setenv(name, value)
        card = FactoryHarness(factory).card("Add a changelog", context="Add CHANGELOG.md")
        card.run()
        assert card.state == "awaiting_review", card.error
        assert card.path == ["plan", "implement", "test", "review", "awaiting_review"]
        assert "approve" in (card.question or "")
        card.reply("approve").run()
    assert card.status == "done", card.error
    assert card.path[-3:] == ["review", "commit", "done"]
    branch = git(repo, "branch", "--list", "nfactory/*").strip(" *")
    assert git(repo, "rev-parse", branch) == card.ctx["commit"]


# -- retries, backoff, caps and failures -----------------------------------------------


def flaky(failures: int) -> Any:
    """An agent that raises `failures` times, then drafts."""
    calls: list[int] = []

    def agent(inp: AgentInput) -> dict[str, Any]:
        calls.append(inp.attempt)
        if len(calls) <= failures:
            raise ConnectionError(f"model unavailable (attempt {inp.attempt})")
        return writing.draft(inp)

    return agent


def test_a_retry_backs_off_on_the_clock_and_then_succeeds() -> None:
    harness = FactoryHarness(writing.FACTORY, agents={"draft": flaky(2)})
    card = harness.card("Release notes").run()
    assert card.path[:4] == ["draft", "draft", "draft", "polish"]
    assert [t.reason for t in card.transitions[:2]] == ["action.failed.retry"] * 2
    assert card.transitions[1].error is not None
    assert "ConnectionError: model unavailable (attempt 2)" in card.transitions[1].error
    assert card.backoffs == [0.2, 0.4]  # Backoff exponential 200 ms, skipped, not slept
    assert card.waiting_for_reply


def test_retries_run_out_and_the_card_fails_with_the_error() -> None:
    card = FactoryHarness(writing.FACTORY, agents={"draft": flaky(3)}).card("Notes").run()
    assert card.status == "failed"
    assert card.path == ["draft", "draft", "draft", "failed"]
    assert card.transitions[-1].reason == "action.failed.exhausted"
    assert card.error is not None and "model unavailable (attempt 3)" in card.error
    with pytest.raises(CardError, match=r"card 'Notes' has finished \(failed in 'failed'\)"):
        card.run()


def test_a_backoff_longer_than_a_tick_sleeps_is_fast_forwarded() -> None:
    def hiccup(inp: AgentInput) -> dict[str, Any]:
        return {"status": "failed"} if inp.attempt == 1 else {"status": "done"}

    factory = define_factory(
        id="slow_retry",
        start="call",
        states={
            "call": action(
                hiccup,
                on={"done": "done", "failed": "failed"},
                retries=Retries(max=1, backoff=Backoff("fixed", ms=600_000, max_ms=600_000)),
            ),
            "done": done(),
            "failed": failed(),
        },
    )
    card = FactoryHarness(factory).card("Call the API").run()
    assert card.status == "done"
    assert card.backoffs == [600.0]
    assert card.path == ["call", "call", "done"]


def test_the_loop_cap_ends_the_revise_loop() -> None:
    def never_complete(inp: AgentInput) -> dict[str, Any]:
        return {"status": "done", "data": {"draft": "# still short"}, "message": "no change"}

    card = FactoryHarness(writing.FACTORY, agents={"review": never_complete}).card("N").run()
    assert card.path.count("review") == 4  # max_iterations=4
    assert "loop.exhausted" in [t.reason for t in card.transitions]
    assert card.state == "approval"


def test_the_transition_cap_fails_a_run_that_never_ends() -> None:
    ping_pong = define_factory(
        id="ping_pong",
        start="ping",
        states={
            "ping": orchestrate(select=lambda inp: "go", on={"go": "pong"}),
            "pong": orchestrate(select=lambda inp: "go", on={"go": "ping"}),
            "done": done(),
        },
    )
    card = FactoryHarness(ping_pong, transition_cap=10, max_transitions_per_tick=3).card("x")
    card.run()
    assert card.status == "failed"
    assert len(card.transitions) == 11 and card.transitions[-1].reason == "run.transition_cap"
    assert card.error is not None and "10" in card.error


def test_a_malformed_result_fails_the_state() -> None:
    card = FactoryHarness(triage.FACTORY, agents={"classify": lambda inp: 42}).card("bug").run()
    assert card.status == "failed"
    assert card.path == ["classify", "failed"]
    assert card.error is not None and "classify" in card.error


def test_a_cancelled_card_stops_before_its_next_state() -> None:
    card = FactoryHarness(writing.FACTORY).card("Notes").run()
    card.cancel(by="ann").run()
    assert card.status == "cancelled"
    assert card.path[-2:] == ["approval", "approval"]
    assert card.error is not None and "cancelled by ann" in card.error


# -- what the harness refuses, and says why --------------------------------------------


def test_replying_to_a_card_not_waiting_names_it_and_its_state() -> None:
    card = FactoryHarness(writing.FACTORY).card("Release notes")
    with pytest.raises(CardError, match="card 'Release notes' is queued, not started, not waiting"):
        card.reply("approve")
    card.run().reply("approve").run()
    with pytest.raises(
        CardError, match="'Release notes' is done in 'done', not waiting for a reply"
    ):
        card.reply("again")


def test_running_a_card_that_waits_without_a_reply_says_to_reply() -> None:
    card = FactoryHarness(writing.FACTORY).card("Release notes").run()
    with pytest.raises(CardError, match=r"waiting for a reply in state .approval.*card\.reply"):
        card.run()
    assert card.path[-1] == "approval"  # nothing ran


def test_agents_override_refuses_unknown_and_agentless_states() -> None:
    with pytest.raises(ValueError, match="no state 'plan' \\(its states: approval, ask_approval"):
        FactoryHarness(writing.FACTORY, agents={"plan": writing.draft})
    with pytest.raises(ValueError, match="state 'polish' of factory 'writing' is a loop state"):
        FactoryHarness(writing.FACTORY, agents={"polish": writing.draft})
    with pytest.raises(TypeError, match="agents\\['draft'\\] must be a function"):
        FactoryHarness(writing.FACTORY, agents={"draft": "draft"})  # type: ignore[dict-item]


def test_an_overridden_select_routes_the_card() -> None:
    harness = FactoryHarness(triage.FACTORY, agents={"route": lambda inp: "feature"})
    card = harness.card("Login crashes").run()
    assert card.ctx["kind"] == "bug" and card.path == ["classify", "route", "feature", "done"]


def test_an_empty_title_is_refused() -> None:
    with pytest.raises(ValueError, match="a card needs a title"):
        FactoryHarness(triage.FACTORY).card("  ")


# -- inside an event loop ---------------------------------------------------------------


async def test_run_async_inside_a_running_loop() -> None:
    card = FactoryHarness(triage.FACTORY).card("Login crashes")
    with pytest.raises(CardError, match=r"use `await card\.run_async\(\)`"):
        card.run()
    await card.run_async()
    assert card.status == "done" and card.path[-1] == "done"
    assert asyncio.get_running_loop().is_running()


# -- the guide's example runs as written ------------------------------------------------

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "authoring.md"


def guide_example() -> str:
    section = GUIDE.read_text().split("## Testing your factory", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def guide_tests() -> list[str]:
    return re.findall(r"^def (test_\w+)\(", guide_example(), flags=re.MULTILINE)


def test_the_guide_shows_tests_for_a_happy_path_a_retry_and_a_refusal() -> None:
    assert guide_tests() == [
        "test_the_draft_is_approved_and_published",
        "test_a_flaky_model_is_retried",
        "test_a_finished_card_cannot_be_answered",
    ]


@pytest.mark.parametrize("name", guide_tests())
def test_the_guides_example_passes(name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(guide_example(), str(GUIDE), "exec"), namespace)
    namespace[name]()


def test_an_agent_raising_timeout_error_fails_its_attempt_like_any_exception() -> None:
    def busy(inp: AgentInput) -> dict[str, Any]:
        raise TimeoutError("socket timed out")

    card = FactoryHarness(triage.FACTORY, agents={"classify": busy}).card("bug").run()
    assert card.status == "failed"
    assert card.error is not None and "raised TimeoutError: socket timed out" in card.error


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_agents_own_timeout_error_under_a_time_limit_is_its_failure_not_the_limit(
    kind: str,
) -> None:
    """With a timeout set, a TimeoutError the agent raises itself (a socket's) is reported
    as what it is; only the limit running out says "timed out after"."""

    def sync_agent(inp: AgentInput) -> dict[str, Any]:
        raise TimeoutError("socket timed out")

    async def async_agent(inp: AgentInput) -> dict[str, Any]:
        raise TimeoutError("socket timed out")

    agent = sync_agent if kind == "sync" else async_agent
    factory = define_factory(
        id="timed",
        start="work",
        states={
            "work": action(agent, on={"done": "finished", "failed": "failed"}, timeout=30),
            "finished": done(),
            "failed": failed(),
        },
    )
    card = FactoryHarness(factory).card("timed").run()
    assert card.status == "failed"
    assert card.error is not None and "raised TimeoutError: socket timed out" in card.error
    assert "timed out after" not in card.error
