"""`nfactory start`: the long-lived worker, with a live view or structured logs."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.live import Live

from factory.cli_shared import board_for, out, runtime
from factory.live import JsonFormatter, render
from factory.scheduler import Worker, WorkerConfig


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def start(
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log lines when not on a terminal.")
    ] = LogFormat.text,
) -> None:
    """Run the worker: poll the board, run cards, deliver effects, until SIGINT/SIGTERM."""
    rt = runtime()
    live = sys.stdout.isatty() and log_format is LogFormat.text
    _configure_logging(log_format, quiet=live)
    config = WorkerConfig(
        poll_seconds=rt.settings.poll_seconds,
        concurrency=rt.settings.concurrency,
        shutdown_grace_seconds=rt.settings.shutdown_grace_seconds,
    )
    asyncio.run(_serve(rt, config, live))


async def _serve(rt, config: WorkerConfig, live: bool) -> None:  # type: ignore[no-untyped-def]
    log = logging.getLogger("nfactory.worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("stopping: finishing running cards (signal again to stop at once)")
            stop.set()
        else:
            # Committed work is safe in the database; leases simply expire.
            log.warning("stopping at once")
            raise SystemExit(130)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    async with board_for(rt) as board:
        worker = Worker(rt.engine, board, config)
        log.info(
            "worker %s started: board %s, %d factories, concurrency %d, poll every %.0fs",
            rt.settings.worker_id,
            board.id,
            len(rt.engine.factories),
            config.concurrency,
            config.poll_seconds,
        )
        worker.start()
        if live:
            with Live(render(worker), console=out, refresh_per_second=2) as view:
                while not stop.is_set():
                    view.update(render(worker))
                    await asyncio.sleep(0.5)
        else:
            await stop.wait()
        await worker.stop()
    log.info("worker stopped")


def _configure_logging(log_format: LogFormat, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
