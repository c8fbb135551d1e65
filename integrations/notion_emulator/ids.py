"""Notion ids: UUIDs accepted dashed or undashed, always answered dashed."""

from __future__ import annotations

import re
import uuid

_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_DASHED = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def parse_id(raw: object) -> str | None:
    """Return the canonical dashed lowercase form of a Notion id, or None if not one.

    Notion accepts both the 32-hex form found in page URLs and the dashed form, so
    every id that enters the emulator is normalised here before any lookup.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if _DASHED.match(text):
        return text.lower()
    if _HEX32.match(text):
        low = text.lower()
        return f"{low[:8]}-{low[8:12]}-{low[12:16]}-{low[16:20]}-{low[20:]}"
    return None


def new_id() -> str:
    return str(uuid.uuid4())


def compact(id_: str) -> str:
    """The undashed form, as used in page URLs."""
    return id_.replace("-", "")
