"""Settings from the environment and `.env` (every one documented in .env.example)."""

from __future__ import annotations

import os
import secrets
import socket
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from factory.effects import SummaryComment

PREFIX = "NFACTORY_"


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class SettingsError(ValueError):
    """A setting has a bad value; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///.nfactory/nfactory.db"
    # SQLite's synchronous mode in WAL: normal (a commit survives the process dying) or
    # full (it survives a power loss or an OS crash too; an fsync per transition).
    sqlite_sync: Literal["normal", "full"] = "normal"
    workflows: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["workflows"])
    lease_seconds: float = Field(default=30.0, ge=2.0, le=3600.0)
    max_transitions_per_tick: int = Field(default=25, ge=1, le=200)
    worker_id: str = Field(default_factory=default_worker_id, min_length=1, max_length=200)
    # Retry backoffs up to this long are waited out inside the tick; longer ones
    # end the tick and the task becomes runnable again once the delay is over.
    max_inline_backoff_seconds: float = Field(default=10.0, ge=0.0, le=3600.0)
    # `nfactory start`
    poll_seconds: float = Field(default=10.0, ge=0.5, le=3600.0)
    concurrency: int = Field(default=4, ge=1, le=256)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0.0, le=3600.0)
    # A running agent's latest progress line goes to its card at most this often.
    progress_seconds: float = Field(default=15.0, ge=1.0, le=3600.0)
    # A stopped command_agent (card cancelled, timeout, worker exit): SIGTERM to its
    # process group, then SIGKILL after this many seconds if anything of it is left.
    cancel_grace_seconds: float = Field(default=10.0, ge=0.0, le=3600.0)
    # Which finished cards get a summary comment: all | problems (Failed, Blocked,
    # Cancelled) | off. Each comment notifies the people following the card.
    summary_comment: SummaryComment = SummaryComment.problems

    @field_validator("sqlite_sync", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("workflows", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(os.pathsep, ",").split(",")]
            return [p for p in parts if p]
        return value


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report into one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            got = err.get("input")
            shown = f" (got {got!r})" if isinstance(got, str | int | float) else ""
            lines.append(f"{name}: {err['msg']}{shown}")
        raise SettingsError("; ".join(lines)) from None
