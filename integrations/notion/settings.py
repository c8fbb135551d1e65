"""Notion settings (NOTION_* variables), kept apart from the engine's NFACTORY_* ones."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from factory.settings import SettingsError


class NotionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # SecretStr: the token prints as '**********' in reprs, logs and errors.
    notion_token: SecretStr | None = None
    notion_base_url: str = "https://api.notion.com"
    notion_board_id: str | None = None
    notion_rate_limit: float = Field(default=3.0, gt=0, le=100)
    notion_burst: int = Field(default=3, ge=1, le=100)
    notion_webhook_secret: SecretStr | None = None
    # the largest webhook body read; anything larger is refused (413) while it arrives
    nfactory_webhook_max_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    nfactory_allowed_repliers: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("nfactory_allowed_repliers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
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
