"""Traffic shaping for the emulator's ``/v1`` API: rate limits, faults, outages.

The app asks :class:`TrafficGate` about every ``/v1`` request before handling
it.  ``admit`` answers ``None`` (go ahead) or a ready Notion error response,
after applying any configured latency or timeout delay, and keeps counts for
``GET /_emulator/stats``.

Order of checks, and why:

1. outage window: Notion down answers everything with 503, limiter or not;
2. the integration's token bucket: a 429 from the limiter spends nothing;
3. the seeded fault draw: an injected error still cost the caller a token,
   as a real 500 does;
4. added latency applies to every answer, as network latency would; the
   timeout delay applies only to requests that are then let through, so a
   client that gave up may find its write happened anyway (the ambiguity real
   timeouts create and idempotent delivery must survive).  ``holds`` rules do
   the same to chosen requests (by method, route and text), so a test can hold
   exactly the writes it means to, whatever order concurrent requests arrive in.

Burst default: Notion publishes the 3 requests/second average but not the
burst size.  10 lets a client that paces itself at 3/s never see a 429 despite
jitter and short clusters, while a client that ignores the limit is cut off
within about three seconds of hammering.  Set ``burst`` to 1-3 for strict tests.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from starlette.responses import Response

from integrations.notion_emulator import faults
from integrations.notion_emulator.ratelimit import TokenBuckets

DEFAULT_FAULT_STATUSES: tuple[int, ...] = (429, 500, 502, 503, 504)
# notion-client's default timeout is 60 s; a delayed request must outlast it.
DEFAULT_TIMEOUT_SECONDS = 61.0
_ANONYMOUS = "<no token>"


class ConfigError(ValueError):
    """Invalid emulator configuration; ``fields`` names every offending field."""

    def __init__(self, message: str, fields: list[str]) -> None:
        super().__init__(message)
        self.fields = fields


def _as_instant(value: Any, now: float) -> Any:
    """Numbers (or numeric strings) are seconds from ``now``; anything else is left
    for pydantic to parse as a datetime.  Without this, pydantic would read a
    bare number as a Unix timestamp and ``{"end": 30}`` would mean 1970."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number of seconds")
        return datetime.fromtimestamp(now, UTC) + timedelta(seconds=value)
    return value


class OutageWindow(BaseModel):
    """A span during which every ``/v1`` request gets 503 ``service_unavailable``.

    ``start`` and ``end`` are each an ISO-8601 instant or a number of seconds
    from the moment the config is applied; ``start`` defaults to now.  They are
    stored as absolute UTC instants so reading the config back is stable.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: datetime
    end: datetime

    @model_validator(mode="before")
    @classmethod
    def _resolve_relative(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        context = info.context if isinstance(info.context, Mapping) else {}
        now = float(context.get("now", time.time()))
        resolved = dict(data)
        resolved.setdefault("start", 0)
        for key in ("start", "end"):
            if key in resolved:
                resolved[key] = _as_instant(resolved[key], now)
        return resolved

    @field_validator("start", "end")
    @classmethod
    def _assume_utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _ordered(self) -> OutageWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def covers(self, instant: float) -> bool:
        return self.start.timestamp() <= instant < self.end.timestamp()


class HoldRule(BaseModel):
    """Hold matching ``/v1`` requests ``seconds`` before handling them (then apply them).

    A request matches when every given criterion does: ``method``, the route
    ``path`` template (``"/v1/comments"``, ``"/v1/pages/{page_id}/markdown"``), and
    ``contains``, a substring of the request's concrete path or its body.  Only the
    first ``times`` matches are held (``null``: every one), so "hold this card's
    first comment for 4 s" is one rule.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str | None = None
    path: str | None = None
    contains: str | None = None
    seconds: float = Field(ge=0)
    times: int | None = Field(default=1, ge=1)

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value is not None else None

    def matches(self, method: str, path_template: str, target: str) -> bool:
        return (
            (self.method is None or self.method == method.upper())
            and (self.path is None or self.path == path_template)
            and (self.contains is None or self.contains in target)
        )


class EmulatorConfig(BaseModel):
    """Everything ``PUT /_emulator/config`` can change; unknown fields are rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: float | None = Field(
        default=3.0, ge=0, description="average requests/second per token; 0 or null = off"
    )
    burst: int = Field(default=10, ge=1, description="bucket size: requests allowed at once")
    fault_rate: float = Field(default=0.0, ge=0, le=1)
    fault_statuses: tuple[int, ...] = DEFAULT_FAULT_STATUSES
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_seconds: float = Field(default=DEFAULT_TIMEOUT_SECONDS, ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
    holds: tuple[HoldRule, ...] = ()
    outage: OutageWindow | None = None
    seed: int | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # The integration's "Read user information" capability: without it Notion answers
    # GET /v1/users and /v1/users/{id} with 403 (GET /v1/users/me still works).
    user_information: bool = True
    # Notion's query index shows an edit some seconds after it: with this set, data source
    # queries see each page as it was before its edits younger than this (index_lag.py).
    query_lag_seconds: float = Field(default=0.0, ge=0)

    @field_validator("fault_statuses")
    @classmethod
    def _known_statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        unknown = sorted(set(value) - faults.FAULT_STATUSES)
        if unknown:
            allowed = ", ".join(str(s) for s in sorted(faults.FAULT_STATUSES))
            raise ValueError(f"unsupported status {unknown}; choose from {allowed}")
        return tuple(sorted(set(value)))

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


def _config_error(error: ValidationError) -> ConfigError:
    fields: list[str] = []
    parts: list[str] = []
    for item in error.errors():
        name = ".".join(str(p) for p in item["loc"]) or "config"
        fields.append(name)
        parts.append(f"{name}: {item['msg'].removeprefix('Value error, ')}")
    return ConfigError("invalid emulator config: " + "; ".join(parts), fields)


def parse_config(data: Mapping[str, Any], now: float | None = None) -> EmulatorConfig:
    """Validate a full config; relative outage times are resolved against ``now``."""
    if not isinstance(data, Mapping):
        raise ConfigError("invalid emulator config: expected a JSON object", ["config"])
    try:
        return EmulatorConfig.model_validate(
            dict(data), context={"now": time.time() if now is None else now}
        )
    except ValidationError as exc:
        raise _config_error(exc) from None


def merge_config(
    current: EmulatorConfig, patch: Mapping[str, Any], now: float | None = None
) -> EmulatorConfig:
    """Apply a partial update; fields absent from ``patch`` keep their values."""
    if not isinstance(patch, Mapping):
        raise ConfigError("invalid emulator config: expected a JSON object", ["config"])
    merged = current.model_dump()
    merged.update(patch)
    return parse_config(merged, now)


class TrafficGate:
    """Decides, per ``/v1`` request, whether it proceeds; thread-safe.

    The lock only guards bookkeeping and is never held across an ``await``, so
    the gate works whether the app runs on one event loop or is driven from
    several threads.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._initial = config or EmulatorConfig()
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets = TokenBuckets(clock)
        self._config = self._initial
        self._seed = self._initial.seed if self._initial.seed is not None else _random_seed()
        self._index = 0
        self._requests: Counter[str] = Counter()
        self._total = 0
        self._rate_limited = 0
        self._faults: Counter[int] = Counter()
        self._outage_rejections = 0
        self._delayed = 0
        self._held = [0] * len(self._initial.holds)  # matches held so far, per hold rule
        self._holding = 0  # requests being held right now (their writes are still to land)

    @property
    def config(self) -> EmulatorConfig:
        return self._config

    def configure(self, patch: Mapping[str, Any]) -> EmulatorConfig:
        """Merge a partial update.  Raises :class:`ConfigError` (a ``ValueError``)
        naming each bad field; on error nothing changes.

        Any patch that mentions ``seed`` restarts the fault sequence, so
        "configure seed 7, then run" injects the same faults every time no
        matter what traffic came before.  Any patch that mentions ``holds``
        starts every rule's count afresh.
        """
        with self._lock:
            updated = merge_config(self._config, patch, self._wall_clock())
            self._config = updated
            if "seed" in patch:
                self._seed = updated.seed if updated.seed is not None else _random_seed()
                self._index = 0
            if "holds" in patch:
                self._held = [0] * len(updated.holds)
            return updated

    async def admit(
        self, method: str, path_template: str, token: str | None = None, target: str = ""
    ) -> Response | None:
        """``None`` lets the request through; otherwise the response to send.

        ``target`` is the request's concrete path and body text, which ``holds``
        rules may look for (a page id, a comment's words).
        """
        with self._lock:
            config = self._config
            index = self._index
            self._index += 1
            self._total += 1
            self._requests[f"{method.upper()} {path_template}"] += 1
            status, retry_after, hold = self._decide(config, index, token)
            if status is None:
                hold = max(hold, self._rule_hold(config, method, path_template, target))
                if hold > 0:
                    self._delayed += 1

        if config.latency_ms > 0:
            await self._sleep(config.latency_ms / 1000.0)
        if status is not None:
            return faults.error_response(status, retry_after=retry_after)
        if hold > 0:
            with self._lock:
                self._holding += 1
            try:
                await self._sleep(hold)
            finally:
                with self._lock:
                    self._holding -= 1
        return None

    def _rule_hold(self, config: EmulatorConfig, method: str, template: str, target: str) -> float:
        """Seconds the first matching rule with holds left asks for; caller holds the lock."""
        for i, rule in enumerate(config.holds):
            if rule.matches(method, template, target) and (
                rule.times is None or self._held[i] < rule.times
            ):
                self._held[i] += 1
                return rule.seconds
        return 0.0

    def _decide(
        self, config: EmulatorConfig, index: int, token: str | None
    ) -> tuple[int | None, int | None, float]:
        """Pick the outcome (status, Retry-After, seconds to hold) and count faults;
        caller holds the lock."""
        if config.outage is not None and config.outage.covers(self._wall_clock()):
            self._outage_rejections += 1
            return 503, None, 0.0
        if config.rate_limit:
            decision = self._buckets.take(token or _ANONYMOUS, config.rate_limit, config.burst)
            if not decision.admitted:
                self._rate_limited += 1
                return 429, decision.retry_after, 0.0
        draw = faults.draw(
            self._seed, index, config.fault_rate, config.fault_statuses, config.timeout_rate
        )
        if draw.status is not None:
            self._faults[draw.status] += 1
            # An injected 429 still tells the client when to retry, as Notion does.
            return draw.status, 1 if draw.status == 429 else None, 0.0
        return None, None, config.timeout_seconds if draw.delayed else 0.0

    def stats(self) -> dict[str, Any]:
        """Counts since start or the last reset, JSON-ready."""
        with self._lock:
            return {
                "total": self._total,
                "requests": dict(sorted(self._requests.items())),
                "rate_limited": self._rate_limited,
                "faults": {str(status): n for status, n in sorted(self._faults.items())},
                "faults_total": sum(self._faults.values()),
                "outage_rejections": self._outage_rejections,
                "delayed": self._delayed,
                "holding": self._holding,
                "seed": self._seed,
            }

    def reset(self) -> None:
        """Back to the config the gate was created with, full buckets, zero counts.

        Restoring the startup config (not keeping the last one) means a test that
        turned faults on cannot leak them into the next test after a reset.
        """
        with self._lock:
            self._config = self._initial
            self._seed = self._initial.seed if self._initial.seed is not None else _random_seed()
            self._index = 0
            self._buckets.clear()
            self._requests.clear()
            self._total = 0
            self._rate_limited = 0
            self._faults.clear()
            self._outage_rejections = 0
            self._delayed = 0
            self._held = [0] * len(self._initial.holds)


def _random_seed() -> int:
    # Reported in stats() so an unseeded run that found a bug can be replayed.
    return secrets.randbits(32)


__all__ = [
    "ConfigError",
    "EmulatorConfig",
    "HoldRule",
    "OutageWindow",
    "TrafficGate",
    "merge_config",
    "parse_config",
]
