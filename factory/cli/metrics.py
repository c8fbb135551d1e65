"""Prometheus text for `GET /metrics`: what the worker did and what waits."""

from __future__ import annotations

from collections.abc import Mapping

from factory.board_protocol import RequestStats
from factory.store.counts import runs_by_status
from factory.store.db import Database
from factory.store.outbox import backlog
from factory.threads import AgentThreads
from factory.worker import WorkerStats


def _metric(name: str, kind: str, help_text: str, samples: Mapping[str, float]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {value:g}" for labels, value in samples.items()]
    return lines


def render(
    stats: WorkerStats,
    db: Database,
    notion: RequestStats | None = None,
    *,
    agents: AgentThreads | None = None,
    board_id: str | None = None,
) -> str:
    """The worker's metrics; database gauges count its own board's cards when `board_id` is
    given, so workers on different boards sharing a database do not report each other's."""
    notion = notion or RequestStats()
    lines: list[str] = []
    lines += _metric(
        "nfactory_transitions_total",
        "counter",
        "Transitions committed by this worker.",
        {"": stats.transitions},
    )
    lines += _metric(
        "nfactory_ticks_total",
        "counter",
        "Ticks by outcome.",
        {f'{{outcome="{k}"}}': v for k, v in sorted(stats.outcomes.items())} or {"": 0},
    )
    lines += _metric(
        "nfactory_runs",
        "gauge",
        "Runs in the database by status.",
        {f'{{status="{k}"}}': v for k, v in sorted(runs_by_status(db, board_id).items())}
        or {"": 0},
    )
    lines += _metric(
        "nfactory_notion_requests_total",
        "counter",
        "Requests sent to the Notion API.",
        {"": notion.total},
    )
    lines += _metric(
        "nfactory_notion_rate_limited_total",
        "counter",
        "429 answers received from Notion.",
        {"": notion.rate_limited},
    )
    lines += _metric(
        "nfactory_outbox_backlog",
        "gauge",
        "Board effects waiting for delivery.",
        {"": backlog(db, board_id)},
    )
    lines += _metric(
        "nfactory_effects_delivered_total",
        "counter",
        "Board effects delivered.",
        {"": stats.delivered},
    )
    lines += _metric(
        "nfactory_lease_takeovers_total",
        "counter",
        "Cards taken over from a worker whose lease expired.",
        {"": stats.lease_takeovers},
    )
    lines += _metric(
        "nfactory_leases_lost_total",
        "counter",
        "Ticks stopped because another worker took over.",
        {"": stats.leases_lost},
    )
    if agents is not None:
        lines += _metric(
            "nfactory_agent_calls_running",
            "gauge",
            "Sync agent calls running in their threads, overrunning ones included.",
            {"": agents.running},
        )
        lines += _metric(
            "nfactory_agent_calls_overrunning",
            "gauge",
            "Sync agent calls given up on (timeout, stop) whose threads still run; "
            "each keeps a concurrency slot.",
            {"": agents.overrunning},
        )
    return "\n".join(lines) + "\n"
