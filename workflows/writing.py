"""Writing: draft a short document, revise it in a loop, and ask a person to approve.

Shows a loop with a named guard, retries, and a feedback state that resumes
at the state that asked. The "writer" is deterministic so it runs offline.
"""

from __future__ import annotations

from factory import (
    AgentInput,
    Backoff,
    Retries,
    action,
    define_factory,
    done,
    failed,
    feedback,
    loop,
)

APPROVALS = ("approve", "approved", "yes", "lgtm", "ship it", "looks good")
SECTIONS = ("Summary", "Details", "Next steps")


def draft(inp: AgentInput) -> dict[str, object]:
    topic = inp.prompt or inp.title
    text = f"# {inp.title}\n\n## Summary\n{topic}\n"
    return {"status": "done", "data": {"draft": text, "revisions": 0}, "message": "first draft"}


def missing_sections(text: str) -> list[str]:
    return [s for s in SECTIONS if f"## {s}" not in text]


def review(inp: AgentInput) -> dict[str, object]:
    """Add the first missing section: one revision per loop iteration."""
    text = str(inp.ctx["draft"])
    missing = missing_sections(text)
    section = missing[0] if missing else ""
    if section:
        text += f"\n## {section}\n" + {
            "Details": "What changes, for whom, and why now.",
            "Next steps": "- Agree on scope\n- Schedule the work",
        }.get(section, "")
    revisions = int(inp.ctx.get("revisions", 0)) + 1
    return {
        "status": "done",
        "data": {"draft": text, "revisions": revisions, "missing": missing_sections(text)},
        "message": f"revision {revisions}: {section or 'nothing'} added",
    }


def ask_approval(inp: AgentInput) -> dict[str, object]:
    reply = str(inp.ctx.get("human_feedback", ""))
    if reply and reply != inp.ctx.get("handled_feedback"):
        if any(word in reply.lower() for word in APPROVALS):
            return {"status": "done", "data": {"approved_by": _who(inp)}, "message": "approved"}
        text = f"{inp.ctx['draft']}\n> Reviewer note: {reply}\n"
        return {
            "status": "feedback",
            "data": {"draft": text, "handled_feedback": reply},
            "message": "I added your note to the draft. Reply 'approve' to publish it.",
        }
    return {
        "status": "feedback",
        "message": "The draft is ready (see the page). Reply 'approve' to publish, "
        "or reply with changes.",
        "page": str(inp.ctx["draft"]),
    }


def _who(inp: AgentInput) -> str:
    meta = inp.ctx.get("human_feedback_meta") or [{}]
    return str(meta[-1].get("author", "someone"))


def publish(inp: AgentInput) -> dict[str, object]:
    return {
        "status": "done",
        "page": f"**Published** (approved by {inp.ctx.get('approved_by', 'someone')}).",
        "message": "published",
    }


FACTORY = define_factory(
    id="writing",
    start="draft",
    context={"revisions": 0},
    guards={"complete": lambda ctx: not missing_sections(str(ctx.get("draft", "")))},
    states={
        "draft": action(
            draft,
            on={"done": "polish", "failed": "failed"},
            retries=Retries(max=2, backoff=Backoff(strategy="exponential", ms=200, max_ms=2000)),
        ),
        "polish": loop(
            body="review",
            max_iterations=4,
            until="complete",
            on={"continue": "review", "done": "ask_approval", "exhausted": "ask_approval"},
        ),
        "review": action(review, on={"done": "polish", "failed": "failed"}),
        "ask_approval": action(
            ask_approval, on={"done": "publish", "feedback": "approval", "failed": "failed"}
        ),
        "approval": feedback(resume="previous"),
        "publish": action(publish, on={"done": "done", "failed": "failed"}),
        "done": done(),
        "failed": failed(),
    },
)
