"""Notion API failures as one exception type that says what to do. Never carries the token."""

from __future__ import annotations

HINTS: dict[int, str] = {
    401: "NOTION_TOKEN is wrong or revoked: copy the integration's secret again "
    "(https://www.notion.so/profile/integrations)",
    403: "the integration lacks a capability this needs (e.g. read or insert comments, "
    "update content): enable it in the integration's settings",
    404: "it does not exist or is not shared with the integration: open the page or "
    "database in Notion, ••• → Connections → add the integration",
    429: "Notion kept rate limiting after every retry: lower NOTION_RATE_LIMIT or run "
    "fewer workers on this integration",
}
PERMANENT = frozenset({400, 401, 403, 404})


class NotionError(Exception):
    def __init__(
        self,
        *,
        status: int | None,
        code: str,
        message: str,
        hint: str = "",
        request_id: str | None = None,
        maybe_applied: bool = False,
    ) -> None:
        self.maybe_applied = maybe_applied  # a write whose outcome is unknown (timeout, 5xx)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint or HINTS.get(status or 0, "")
        self.request_id = request_id
        super().__init__(str(self))

    @property
    def permanent(self) -> bool:
        """Retrying the same request cannot succeed (bad request, no access, not found)."""
        return self.status in PERMANENT

    def __str__(self) -> str:
        where = f"Notion {self.status} {self.code}" if self.status else f"Notion {self.code}"
        text = f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint and self.hint != self.message else text

    def __repr__(self) -> str:
        return f"NotionError(status={self.status!r}, code={self.code!r}, message={self.message!r})"
