"""Notion API failures as one exception type that says what to do. Never carries the token."""

from __future__ import annotations

from factory import redact as _redact

_NOT_SHARED = (
    "the page/database does not exist or is not shared with the integration: open it in "
    "Notion, ••• → Connections → add the integration"
)
_BAD_TOKEN = (
    "NOTION_TOKEN is wrong or revoked: copy the integration's secret again "
    "(https://www.notion.so/profile/integrations)"
)
_NO_CAPABILITY = (
    "the integration lacks a capability (e.g. read/insert comments, update content): "
    "enable it in the integration settings"
)
_RATE = (
    "rate limited by Notion after every retry: lower NOTION_RATE_LIMIT or run fewer "
    "workers on this integration"
)
_DOWN = "Notion is failing or overloaded: try again later"

HINTS: dict[int, str] = {
    401: _BAD_TOKEN,
    403: _NO_CAPABILITY,
    404: _NOT_SHARED,
    409: "another edit of the same object collided with this one after every retry; retry later",
    429: _RATE,
    529: _RATE,
    500: _DOWN,
    502: _DOWN,
    503: _DOWN,
    504: _DOWN,
}
CODE_HINTS: dict[str, str] = {
    "unauthorized": _BAD_TOKEN,
    "restricted_resource": _NO_CAPABILITY,
    "object_not_found": _NOT_SHARED,
    "rate_limited": _RATE,
    "service_overload": _RATE,
    "timeout": "Notion did not answer in time; a write may still have been applied: "
    "check before repeating it",
    "connection_error": "could not reach Notion: check the network and NOTION_BASE_URL",
    "invalid_base_url": "NOTION_BASE_URL is not a usable URL (expected e.g. "
    "https://api.notion.com)",
    "invalid_response": "Notion (or a proxy in between) answered something that is not "
    "Notion JSON; retry later",
}
# A request that cannot succeed as sent; delivery should park it rather than retry.
PERMANENT = frozenset({400, 401, 403, 404})
_PERMANENT_CODES = frozenset({"invalid_base_url", "invalid_request_url"})


def hint_for(status: int | None, code: str, message: str) -> str:
    """What a person should do about this failure."""
    if status == 400 or code in ("validation_error", "invalid_request", "invalid_json"):
        # Notion's validation messages already name the offending field.
        return message
    return CODE_HINTS.get(code) or HINTS.get(status or 0, "")


def redact(text: str, secret: str | None) -> str:
    """`text` without `secret` in any form (raw, repr, bytes repr, escaped, URL-encoded),
    nor any other secret this process registered."""
    if secret:
        text = _redact.Redactor([secret])(text)
    return _redact.redact(text)


class NotionError(Exception):
    """A Notion request failed for good (after any retries).

    `status` is None when no HTTP answer arrived (timeout, connection error).
    `maybe_applied` marks a write whose outcome is unknown (a timeout or 5xx
    on a request that reached Notion): check before sending it again.
    """

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
        self.status = status
        self.code = code
        # Every Notion failure ends up printed, logged or stored: none may carry a secret.
        self.message = message = _redact.redact(message)
        self.hint = _redact.redact(hint) or hint_for(status, code, message)
        self.request_id = request_id
        self.maybe_applied = maybe_applied
        super().__init__(str(self))

    @property
    def permanent(self) -> bool:
        """Retrying the same request cannot succeed (bad request, no access, not found)."""
        if self.code in _PERMANENT_CODES:
            return True
        if self.status is None:
            return False
        # Other 4xx (405, 413, ...) are as hopeless as 400; 409 and 429 are not.
        return self.status in PERMANENT or (
            400 <= self.status < 500 and self.status not in (409, 429)
        )

    def __str__(self) -> str:
        where = f"Notion {self.status} {self.code}" if self.status else f"Notion {self.code}"
        text = f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint and self.hint != self.message else text

    def __repr__(self) -> str:
        return (
            f"NotionError(status={self.status!r}, code={self.code!r}, message={self.message!r}, "
            f"request_id={self.request_id!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only __init__ would break pickling (multiprocessing, logging queues).
        return (_rebuild, (self.__dict__.copy(),))


def _rebuild(state: dict[str, object]) -> NotionError:
    error = NotionError.__new__(NotionError)
    error.__dict__.update(state)
    Exception.__init__(error, str(error))
    return error
