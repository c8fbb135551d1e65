"""Who may answer a card's question: NFACTORY_ALLOWED_REPLIERS, resolved against the workspace.

The pure parts (`normalize_entry`, `Repliers`, `resolve`) decide; `UserDirectory`
is the one place that asks Notion who a user is, once per user.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from integrations.notion.errors import NotionError
from integrations.notion.page_refs import dashed

if TYPE_CHECKING:
    from integrations.notion.client import NotionClient

log = logging.getLogger("nfactory.notion")

Kind = Literal["person", "bot", "unknown"]

USERS_UNREADABLE = (
    "the integration cannot read users, so no comment can be told to be a person's and "
    "none counts as an answer: enable 'Read user information' in its capabilities"
)
_HEX32 = re.compile(r"[0-9a-f]{32}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def normalize_id(raw: str) -> str | None:
    """`8-4-4-4-12` lowercase for a Notion id written with or without dashes, else None."""
    compact = raw.strip().lower().replace("-", "")
    return dashed(compact) if _HEX32.fullmatch(compact) else None


def normalize_entry(raw: str) -> str:
    """One allow-list entry as compared: a dashed lowercase id or a lowercase email.

    Raises ValueError (naming the entry, which is no secret) for anything else.
    """
    text = raw.strip()
    as_id = normalize_id(text)
    if as_id is not None:
        return as_id
    if _EMAIL.fullmatch(text):
        return text.lower()
    raise ValueError(
        f"{text!r} is neither a Notion user id (32 hex digits, dashes optional) nor an email"
    )


@dataclass(frozen=True)
class Repliers:
    """The resolved allow-list.

    `configured` is False when NFACTORY_ALLOWED_REPLIERS is unset: any person may
    answer. When it is set, only the people in `ids` may, and an allow-list that
    resolved to nobody admits nobody (a restriction fails closed).
    """

    configured: bool = False
    ids: frozenset[str] = frozenset()
    unresolved: tuple[str, ...] = ()

    def admits_id(self, author_id: str) -> bool:
        return not self.configured or (normalize_id(author_id) or author_id) in self.ids

    def may_answer(self, author_id: str, author_is_person: bool) -> bool:
        return author_is_person and self.admits_id(author_id)

    @property
    def nobody(self) -> bool:
        return self.configured and not self.ids


ANYONE = Repliers()  # NFACTORY_ALLOWED_REPLIERS unset: any person


def user_kind(user: Mapping[str, Any]) -> Kind:
    kind = user.get("type")
    return kind if kind in ("person", "bot") else "unknown"


def resolve(
    entries: Sequence[str], kinds: Mapping[str, Kind], emails: Mapping[str, str]
) -> Repliers:
    """Entries (already normalized) against the workspace: `kinds` by user id, and the
    user id of each person's lowercase email. An entry naming a bot resolves to no person."""
    if not entries:
        return Repliers()
    ids: set[str] = set()
    unresolved: list[str] = []
    for entry in entries:
        user_id = emails.get(entry) if "@" in entry else entry
        if user_id is not None and kinds.get(user_id) == "person":
            ids.add(user_id)
        else:
            unresolved.append(entry)
    return Repliers(True, frozenset(ids), tuple(unresolved))


def replier_warnings(repliers: Repliers) -> list[str]:
    """What `start` warns and `doctor` asks to fix about the allow-list, one line each."""
    lines = [
        f"NFACTORY_ALLOWED_REPLIERS: {entry!r} matches no person in the workspace"
        for entry in repliers.unresolved
    ]
    if repliers.nobody:
        lines.append("NFACTORY_ALLOWED_REPLIERS: no entry resolves: nobody can answer questions")
    return lines


@dataclass
class UserDirectory:
    """Who each workspace user is, read once: the /users listing at open, then one
    GET /users/{id} for an author the listing did not hold (a user added since)."""

    client: NotionClient
    kinds: dict[str, Kind] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    readable: bool = True  # False once Notion refused to list users (no user capability)
    loaded: bool = False  # the listing was read (or refused): not asked again
    _asking: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def learn(self, users: Iterable[Mapping[str, Any]]) -> None:
        for user in users:
            user_id = normalize_id(str(user.get("id", "")))
            if user_id is None:
                continue
            self.kinds[user_id] = user_kind(user)
            email = ((user.get("person") or {}).get("email") or "").strip().lower()
            if email and self.kinds[user_id] == "person":
                self.emails[email] = user_id

    async def load(self) -> None:
        """The whole /users listing (people and bots; guests are not listed)."""
        try:
            self.learn([u async for u in self.client.paginate("GET", "users")])
        except NotionError as exc:
            if exc.status != 403:
                raise  # a passing failure: read again at the next need
            self.readable = False  # the caller says so: a warning at start, a FIX in doctor
        self.loaded = True

    async def kind(self, user_id: str) -> Kind:
        """A comment author's kind; one that cannot be looked up is "unknown" (not a person)."""
        key = normalize_id(user_id) or user_id
        known = self.kinds.get(key)
        if known is not None:
            return known
        async with self._asking:  # two cards' checks must not both ask about one newcomer
            known = self.kinds.get(key)
            if known is not None:
                return known
            found = await self._lookup(key)
        if found == "unknown" and self.readable:
            log.warning(
                "Notion user %s cannot be looked up: their comments do not count as answers", key
            )
        return found

    async def _lookup(self, key: str) -> Kind:
        """GET /users/{id}, remembered either way so a user is asked about once."""
        if not self.readable:
            self.kinds[key] = "unknown"
            return "unknown"
        try:
            found: Kind = user_kind(await self.client.request("GET", f"users/{key}"))
        except NotionError as exc:
            if exc.status not in (403, 404):
                raise  # a passing failure: not remembered, asked again next time
            found = "unknown"  # fails closed
        self.kinds[key] = found
        return found

    async def resolve(self, entries: Sequence[str]) -> Repliers:
        """The allow-list; ids missing from the listing (guests) are looked up one by one."""
        for entry in entries:
            if "@" not in entry and entry not in self.kinds:
                await self._lookup(entry)
        return resolve(entries, self.kinds, self.emails)
