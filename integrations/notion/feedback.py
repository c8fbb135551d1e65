"""Finding human replies to a card's feedback question among its page comments.

The pure rules (`answering`, `new_replies`) decide which comments are answers;
the board reads the comments (one paginated read per waiting card) and hands
them here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from factory.board_protocol import Reply
from integrations.notion.cards import parse_time
from integrations.notion.repliers import ANYONE, Repliers, normalize_id
from integrations.notion.richtext import plain


def comment_text(comment: dict[str, Any]) -> str:
    return plain(comment.get("rich_text", []))


def author_of(comment: dict[str, Any]) -> str:
    raw = str((comment.get("created_by") or {}).get("id", ""))
    return normalize_id(raw) or raw


def by_integration(comment: dict[str, Any]) -> bool:
    """Notion names an integration's comment as such (or by a name it chose), whoever it is."""
    return (comment.get("display_name") or {}).get("type") in ("integration", "custom")


def answering(
    comments: Sequence[dict[str, Any]],
    *,
    bot_id: str,
    question_id: str | None,
    consumed: Collection[str],
) -> list[dict[str, Any]]:
    """Comments, oldest first, that could answer: after the question, not this bot's,
    not yet used, with some text.

    Position in Notion's oldest-first list decides "after the question", not
    timestamps, which Notion rounds to the minute. If the question cannot be
    found (resolved or deleted), every unconsumed comment counts.
    """
    if question_id is not None:
        ids = [c.get("id") for c in comments]
        if question_id in ids:
            comments = comments[ids.index(question_id) + 1 :]
    bot = normalize_id(bot_id) or bot_id
    return [
        c
        for c in comments
        if author_of(c) != bot and c.get("id") not in consumed and comment_text(c).strip()
    ]


def new_replies(
    comments: Sequence[dict[str, Any]],
    *,
    bot_id: str,
    question_id: str | None,
    consumed: Collection[str],
    people: Collection[str],
    repliers: Repliers = ANYONE,
) -> list[Reply]:
    """The answers among `answering(...)`: comments by people (`people`: the authors
    known to be persons, not bots) whom the allow-list admits."""
    replies = []
    for c in answering(comments, bot_id=bot_id, question_id=question_id, consumed=consumed):
        author = author_of(c)
        if repliers.may_answer(author, author in people and not by_integration(c)):
            text = comment_text(c).strip()
            replies.append(Reply(c["id"], text, author, parse_time(c["created_time"])))
    return replies
