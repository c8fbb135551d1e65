"""Writing, as a flow: draft, polish in a loop, then rounds of "approve or revise" review.

The flow-style twin of `writing` (which is a state table): the same kind of
draft and review agents (imported from its neighbour) and publish agent,
composed with `flow`, `step`, `loop`, `write`, `ask` and `decide` instead of a
table of states. A reply that is neither
"approve" nor "revise ..." is asked again ("Please reply with approve or
revise."); after three rounds of revisions the card is Blocked for a person to
look at. It compiles to the states

    draft -> polish <-> review -> rounds -> show -> ask_verdict -> verdict (waits)
    -> ask_verdict -> route -> (revise: note -> rounds) | (approve: rounds) -> publish -> done
"""

from __future__ import annotations

from factory import (
    AgentInput,
    Backoff,
    Retries,
    ask,
    decide,
    define_factory,
    end,
    flow,
    loop,
    one_of,
    step,
    write,
)

from .writing import draft, missing_sections, review  # a neighbour module, as any folder may

MAX_ROUNDS = 3
QUESTION = (
    "The draft is ready (see the page). Reply 'approve' to publish it, "
    "or 'revise' followed by what to change."
)


def publish(inp: AgentInput) -> dict[str, object]:
    return {
        "status": "done",
        "page": f"**Published** (approved by {inp.ctx.get('approved_by', 'someone')}).",
        "message": "published",
    }


def complete(ctx: dict[str, object]) -> bool:
    return not missing_sections(str(ctx.get("draft", "")))


def approved(ctx: dict[str, object]) -> bool:
    return ctx.get("verdict") == "approve"


def show(inp: AgentInput) -> str:
    return str(inp.ctx["draft"])


def note(inp: AgentInput) -> dict[str, object]:
    """Take the reviewer's words after "revise" into the draft."""
    reply = str(inp.ctx.get("human_feedback", ""))
    words = reply.split(maxsplit=1)
    change = words[1].strip(" :-") if len(words) > 1 else "(no details given)"
    return {
        "status": "done",
        "data": {"draft": f"{inp.ctx['draft']}\n> Reviewer note: {change}\n"},
        "message": f"revision asked: {change}",
    }


def approver(inp: AgentInput) -> dict[str, object]:
    meta = inp.ctx.get("human_feedback_meta") or [{}]
    who = str(meta[-1].get("author", "someone"))  # type: ignore[index, union-attr]
    return {"status": "done", "data": {"approved_by": who}, "message": f"approved by {who}"}


FACTORY = define_factory(
    id="writing_flow",
    context={"revisions": 0},
    run=flow(
        step(draft, retries=Retries(max=2, backoff=Backoff("exponential", ms=200, max_ms=2000))),
        loop(step(review), name="polish", until=complete, max_iterations=4),
        loop(
            write(show, name="show"),
            ask(QUESTION, one_of("approve", "revise"), name="verdict"),
            decide("verdict", {"approve": step(approver), "revise": step(note)}, name="route"),
            name="rounds",
            until=approved,
            max_iterations=MAX_ROUNDS,
            exhausted=end("blocked"),
        ),
        step(publish),
    ),
)
