"""`nfactory task reply` on an emulator board: answer a card as the emulator's person.

On real Notion people answer in the card's comments; the emulator (`nfactory emulator`)
has no app to comment in, so its control API (`POST /_emulator/comments`) stands in.
"""

from __future__ import annotations

import httpx

# Short: asked before every reply on a Notion board, and real Notion answers it with 404.
ASK_TIMEOUT = 5.0


def is_emulator(base_url: str) -> bool:
    """Whether NOTION_BASE_URL is an `nfactory emulator`: it answers /_emulator/root."""
    try:
        answer = httpx.get(f"{base_url.rstrip('/')}/_emulator/root", timeout=ASK_TIMEOUT)
    except httpx.HTTPError:
        return False
    if answer.status_code != 200:
        return False
    try:
        doc = answer.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and "person_id" in doc


def comment_as_person(base_url: str, page_id: str, text: str) -> str:
    """Post `text` on the card's page as the emulator's person; the comment's id."""
    answer = httpx.post(
        f"{base_url.rstrip('/')}/_emulator/comments",
        json={"page_id": page_id, "text": text},
        timeout=ASK_TIMEOUT,
    )
    if answer.status_code != 200:
        try:
            message = answer.json().get("message", answer.text)
        except ValueError:
            message = answer.text
        raise ValueError(f"the emulator refused the reply ({answer.status_code}): {message}")
    return str(answer.json()["id"])
