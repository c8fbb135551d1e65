"""Triage: read a card, decide what kind of work it is, and prepare the next step.

Shows an action, an orchestrate with `select`, and terminal states. The
classifier is keyword based so the example runs offline; swap `classify`
for an LLM call and nothing else changes.
"""

from __future__ import annotations

import re

from factory import AgentInput, action, blocked, define_factory, done, failed, orchestrate

KEYWORDS = {
    "bug": ("bug", "error", "crash", "broken", "fails", "exception", "regression"),
    "feature": ("feature", "add", "support", "would like", "request", "allow"),
    "question": ("how", "why", "what", "question", "?"),
}


def classify(inp: AgentInput) -> dict[str, object]:
    text = f"{inp.title}\n{inp.context}".lower()
    scores = {
        kind: sum(len(re.findall(re.escape(word), text)) for word in words)
        for kind, words in KEYWORDS.items()
    }
    kind, score = max(scores.items(), key=lambda item: item[1])
    kind = kind if score > 0 else "unclear"
    return {
        "status": "done",
        "data": {"kind": kind, "scores": scores},
        "message": f"classified as {kind} (scores: {scores})",
    }


def bug_checklist(inp: AgentInput) -> dict[str, object]:
    page = "\n".join(
        [
            "## Bug triage",
            f"**Report:** {inp.prompt or inp.title}",
            "",
            "- [ ] Reproduce on the latest release",
            "- [ ] Capture logs and the exact error",
            "- [ ] Find the last version that worked",
            "- [ ] Write a failing test before the fix",
        ]
    )
    return {"status": "done", "page": page, "message": "bug checklist added to the card"}


def feature_brief(inp: AgentInput) -> dict[str, object]:
    page = "\n".join(
        [
            "## Feature brief",
            f"**Ask:** {inp.prompt or inp.title}",
            "",
            "### Who needs it",
            "To be filled in with the requester.",
            "### Smallest useful version",
            "One sentence on what ships first.",
        ]
    )
    return {"status": "done", "page": page, "message": "feature brief added to the card"}


def answer_outline(inp: AgentInput) -> dict[str, object]:
    page = (
        f"## Answer outline\n**Question:** {inp.prompt or inp.title}\n\n1. Short answer\n2. Links"
    )
    return {"status": "done", "page": page, "message": "answer outline added"}


FACTORY = define_factory(
    id="triage",
    start="classify",
    states={
        "classify": action(classify, on={"done": "route", "failed": "failed"}),
        "route": orchestrate(
            select=lambda inp: inp.ctx["kind"],
            on={
                "bug": "bug",
                "feature": "feature",
                "question": "question",
                "unclear": "needs_detail",
            },
        ),
        "bug": action(bug_checklist, on={"done": "done", "failed": "failed"}),
        "feature": action(feature_brief, on={"done": "done", "failed": "failed"}),
        "question": action(answer_outline, on={"done": "done", "failed": "failed"}),
        "needs_detail": blocked(),
        "done": done(),
        "failed": failed(),
    },
)
