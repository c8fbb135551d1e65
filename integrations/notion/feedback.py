"""Finding human replies to a card's feedback question among its page comments.

The pure rule (`new_replies`) decides which comments are answers; `fetch`
does the one paginated read per waiting card.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from factory.board import Reply
from integrations.notion.cards import parse_time
from integrations.notion.client import NotionClient
from integrations.notion.richtext import plain


def comment_text(comment: dict[str, Any]) -> str:
    return plain(comment.get("rich_text", []))


def new_replies(
    comments: Sequence[dict[str, Any]],
    *,
    bot_id: str,
    question_id: str | None,
    consumed: Collection[str],
    allowed: Collection[str] = (),
) -> list[Reply]:
    """Comments, oldest first, that answer the question: after it, by people, not yet used.

    Position in Notion's oldest-first list decides "after the question", not
    timestamps, which Notion rounds to the minute. If the question cannot be
    found (resolved or deleted), every unconsumed human comment counts.
    """
    if question_id is not None:
        ids = [c.get("id") for c in comments]
        if question_id in ids:
            comments = comments[ids.index(question_id) + 1 :]
    replies = []
    for c in comments:
        author = (c.get("created_by") or {}).get("id", "")
        if author == bot_id or c.get("id") in consumed:
            continue
        if allowed and author not in allowed:
            continue
        text = comment_text(c).strip()
        if text:
            replies.append(Reply(c["id"], text, author, parse_time(c["created_time"])))
    return replies


async def fetch_comments(client: NotionClient, page_id: str) -> list[dict[str, Any]]:
    return await client.list_comments_all(page_id)
