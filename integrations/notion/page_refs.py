"""A card named the ways people have at hand: a page id (dashed or not) or a page URL.

Pure: `card_ref` turns what someone pasted into what the store looks up, and
`page_url` makes the link the CLI shows next to a card.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

APP_URL = "https://www.notion.so/"
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_DASHED = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_PATH_ID = re.compile(rf"(?:{_DASHED.pattern}|{_HEX32.pattern})$")
# Where people copy page links from: the app, published sites, the newer app host.
_HOSTS = ("notion.so", "notion.site", "notion.com")
# a link pasted without its scheme: www.notion.so/Title-<id>
_BARE_LINK = re.compile(r"^(?:[\w-]+\.)*notion\.(?:so|site|com)/", re.IGNORECASE)


def dashed(hex32: str) -> str:
    """The 8-4-4-4-12 form the API answers with (ids are stored that way)."""
    h = hex32.replace("-", "").lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def card_ref(text: str) -> str:
    """What to look a card up by: a Notion page URL or undashed page id becomes the dashed
    page id; anything else (a task id, its prefix, a dashed page id) is kept as typed.

    A URL's `?p=` (a card opened from its board) names the card; otherwise the id that
    ends the path does (`https://www.notion.so/Title-<32 hex>`).
    """
    ref = text.strip()
    if not ref:
        raise ValueError("the card reference is empty: give a task id, page id or page URL")
    if "://" not in ref and not _BARE_LINK.match(ref):
        if _HEX32.fullmatch(ref):
            return dashed(ref)
        if _DASHED.fullmatch(ref):
            return ref.lower()
        return ref
    try:
        parts = urlsplit(ref if "://" in ref else f"https://{ref}")
        parts.port  # noqa: B018  (a malformed port raises only when read)
    except ValueError:
        raise ValueError(f"{ref!r} is not a Notion page URL (it does not parse)") from None
    host = (parts.hostname or "").lower()
    if not any(host == h or host.endswith(f".{h}") for h in _HOSTS):
        raise ValueError(f"{text.strip()!r} is not a Notion page URL (host {host or 'missing'})")
    for value in parse_qs(parts.query).get("p", []):
        if _HEX32.fullmatch(value) or _DASHED.fullmatch(value):
            return dashed(value)
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    found = _PATH_ID.search(last)
    if found is None:
        raise ValueError(f"no page id in the URL {text.strip()!r} (expected …-<32 hex digits>)")
    return dashed(found.group())


def page_url(title: str, page_id: str) -> str:
    """The page's link as Notion writes it: the title's words, then the undashed id."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")
    return f"{APP_URL}{slug + '-' if slug else ''}{page_id.replace('-', '').lower()}"
