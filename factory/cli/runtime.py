"""Wiring: settings -> database -> factories -> engine -> board."""

from __future__ import annotations

from dataclasses import dataclass

from factory.board_protocol import Board
from factory.clock import Clock, SystemClock
from factory.engine import Engine, EngineConfig
from factory.loader import Catalog, load_factories, refusal
from factory.local_board import LocalBoard
from factory.settings import Settings, SettingsError
from factory.shell_agent import set_cancel_grace
from factory.store.db import Database, open_database
from factory.threads import agent_threads_for


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: Catalog
    engine: Engine
    board: Board


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        worker_id=settings.worker_id,
        lease_seconds=settings.lease_seconds,
        max_transitions_per_tick=settings.max_transitions_per_tick,
        max_inline_backoff_seconds=settings.max_inline_backoff_seconds,
        agent_threads=agent_threads_for(settings.concurrency),
        summary_comment=settings.summary_comment,
    )


def refuse_to_work(settings: Settings, catalog: Catalog) -> None:
    """A command that claims cards stops here when no card could run: it would block them."""
    reason = refusal(settings.workflows, catalog, "NFACTORY_WORKFLOWS")
    if reason is not None:
        raise SettingsError(reason)


def open_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    set_cancel_grace(settings.cancel_grace_seconds)
    db = open_database(settings.database_url, settings.sqlite_sync)
    catalog = load_factories(settings.workflows)
    engine = Engine(db, catalog.factories, engine_config(settings), clock, catalog.unloaded)
    return Runtime(settings, db, catalog, engine, LocalBoard(db, clock))
