"""Notion settings (NOTION_* variables), kept apart from the engine's NFACTORY_* ones."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from factory import redact
from factory.reply_schedule import REPLY_SHARE, ReplySchedule, schedule_for
from factory.settings import SettingsError
from integrations.notion.repliers import normalize_entry


def header_problem(token: str) -> str | None:
    """Why `token` cannot be sent as `Authorization: Bearer <token>`, never quoting it."""
    if not token.isascii():
        return (
            "contains non-ASCII characters, which an HTTP header cannot carry; "
            "copy the integration's secret again"
        )
    if any(not ch.isprintable() or ch.isspace() for ch in token):
        return (
            "contains a space, line break or control character inside it, which a bearer "
            "token cannot have; copy the integration's secret again"
        )
    return None


class NotionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # SecretStr: the token prints as '**********' in reprs, logs and errors.
    notion_token: SecretStr | None = None
    notion_base_url: str = "https://api.notion.com"
    notion_board_id: str | None = None
    notion_rate_limit: float = Field(default=3.0, gt=0, le=100)
    notion_burst: int = Field(default=3, ge=1, le=100)
    # auto: workers on one PostgreSQL database share the integration's budget through it;
    # on: through SQLite too (cron ticks beside a `start`); off: each process on its own
    notion_rate_shared: Literal["auto", "on", "off"] = "auto"
    # the most of NOTION_RATE_LIMIT that looks for replies may spend (deliveries and intake
    # always go first); see factory/reply_schedule.py
    nfactory_reply_share: float = Field(default=REPLY_SHARE, gt=0, le=1)
    notion_webhook_secret: SecretStr | None = None
    # the largest webhook body read; anything larger is refused (413) while it arrives
    nfactory_webhook_max_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    nfactory_allowed_repliers: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("nfactory_allowed_repliers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            entries = [str(p) for p in value if str(p).strip()]
            try:
                # ids with or without dashes, emails in any case: one spelling each
                return list(dict.fromkeys(normalize_entry(p) for p in entries))
            except ValueError as exc:
                raise PydanticCustomError("allowed_replier", str(exc)) from None
        return value

    @field_validator("notion_token", "notion_webhook_secret", mode="before")
    @classmethod
    def _strip_secret(cls, value: object) -> object:
        """A secret read from a file ends in a newline; its edges are never part of it."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            return value
        # Registered before any check can fail, so no message can ever show it.
        redact.register(raw)
        stripped = raw.strip()
        redact.register(stripped)
        return stripped or None

    @field_validator("notion_token")
    @classmethod
    def _token_fits_a_header(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            problem = header_problem(value.get_secret_value())
            if problem is not None:
                raise PydanticCustomError("token_shape", problem)
        return value

    @field_validator("notion_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def board_configured(self) -> bool:
        return bool(self.notion_board_id)

    def reply_schedule(self, poll_seconds: float) -> ReplySchedule:
        """Which waiting cards to look at for replies each pass, within the reply share."""
        return schedule_for(poll_seconds, self.nfactory_reply_share, self.notion_rate_limit)

    def token(self) -> str:
        if self.notion_token is None or not self.notion_token.get_secret_value():
            raise SettingsError(
                "NOTION_TOKEN is not set: create an integration at "
                "https://www.notion.so/profile/integrations and export its secret"
            )
        return self.notion_token.get_secret_value()


def load_notion_settings(**overrides: object) -> NotionSettings:
    try:
        return NotionSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']}")  # never echo the input: it may be the token
        raise SettingsError("; ".join(lines)) from None
