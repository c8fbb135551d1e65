"""`nfactory start`: the long-lived worker, with a live view or structured logs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import uvicorn
from rich.live import Live
from sqlalchemy import text

from factory.cli_shared import board_for, notion_settings, out, runtime
from factory.live import JsonFormatter, RequestRate, render
from factory.metrics import render as render_metrics
from factory.redact import RedactingFilter, install_log_redaction
from factory.scheduler import Worker, WorkerConfig, quiet_chatty_loggers


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def start(
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log lines when not on a terminal.")
    ] = LogFormat.text,
    webhook_port: Annotated[
        int | None,
        typer.Option("--webhook-port", help="Serve Notion webhooks, /healthz and /metrics here."),
    ] = None,
    webhook_host: Annotated[
        str, typer.Option("--webhook-host", help="Interface for the webhook server.")
    ] = "127.0.0.1",
) -> None:
    """Run the worker: poll the board, run cards, deliver effects, until SIGINT/SIGTERM."""
    rt = runtime()
    if webhook_port is not None and not notion_settings().board_configured:
        raise ValueError("--webhook-port needs a Notion board: set NOTION_BOARD_ID")
    live = sys.stdout.isatty() and log_format is LogFormat.text
    _configure_logging(log_format, quiet=live)
    config = WorkerConfig(
        poll_seconds=rt.settings.poll_seconds,
        concurrency=rt.settings.concurrency,
        shutdown_grace_seconds=rt.settings.shutdown_grace_seconds,
    )
    _run(_serve(rt, config, live, webhook_host, webhook_port))


def _run(main: Coroutine[Any, Any, int]) -> None:
    """asyncio.run, except that agent calls abandoned at stop do not hold the exit.

    A sync agent runs in a thread, which cannot be cancelled: once the grace is over
    its tick is cancelled and its lease released, but asyncio.run (and the interpreter)
    would still wait for the thread, i.e. for the agent call to end, however long.
    """
    runner = asyncio.Runner()
    try:
        abandoned = runner.run(main)
    except SystemExit as exc:  # a second signal: stop at once, nothing committed is lost
        _exit_now(exc.code if isinstance(exc.code, int) else 1)
    except BaseException:
        runner.close()
        raise
    if abandoned:
        _exit_now(0)
    runner.close()


def _exit_now(code: int) -> NoReturn:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _serve(  # type: ignore[no-untyped-def]
    rt, config: WorkerConfig, live: bool, webhook_host: str, webhook_port: int | None
) -> int:
    """Run until a signal; the number of agent calls abandoned at stop."""
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
        web: tuple[uvicorn.Server, asyncio.Task[None]] | None = None
        if webhook_port is not None:
            web = _start_webhooks(rt, worker, board, webhook_host, webhook_port)
        if live:
            client = getattr(board, "client", None)  # the Notion board counts its requests
            rate = RequestRate(client.stats.as_dict) if client is not None else None
            with Live(render(worker, rate), console=out, refresh_per_second=2) as view:
                while not stop.is_set():
                    view.update(render(worker, rate))
                    await asyncio.sleep(0.5)
        else:
            await stop.wait()
        await worker.stop()
        if web is not None:
            server, serving = web
            server.should_exit = True
            await serving
    if worker.abandoned:
        log.info(
            "worker stopped; not waiting for %d agent call(s) still running past the grace "
            "(their cards were released)",
            worker.abandoned,
        )
    else:
        log.info("worker stopped")
    return worker.abandoned


def _start_webhooks(
    rt, worker: Worker, board, host: str, port: int
) -> tuple[uvicorn.Server, asyncio.Task[None]]:  # type: ignore[no-untyped-def]
    """The webhook receiver, /healthz and /metrics, served in the worker's own loop."""
    from integrations.notion.webhooks import WebhookReceiver

    settings = notion_settings()
    secret = (
        settings.notion_webhook_secret.get_secret_value()
        if settings.notion_webhook_secret
        else None
    )

    def health() -> dict[str, str]:
        try:
            with rt.db.connect() as conn:
                conn.execute(text("SELECT 1"))
            database = "ok"
        except Exception as exc:
            database = f"error: {type(exc).__name__}"
        return {"worker": "ok" if worker.accepting else "stopping", "database": database}

    def metrics() -> str:
        return render_metrics(worker.stats, rt.db, board.client.stats.as_dict())

    receiver = WebhookReceiver(
        rt.db,
        secret,
        board.bot_id,
        worker.wake,
        health,
        metrics,
        Path(".nfactory") / "webhook-verification-token",
        hint=worker.hint,
    )
    server = uvicorn.Server(
        uvicorn.Config(receiver.app, host=host, port=port, log_level="warning", lifespan="off")
    )
    install_log_redaction()  # uvicorn's own handlers, made by its Config just now
    # the worker owns SIGINT/SIGTERM; uvicorn would capture them and raise them again
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    logging.getLogger("nfactory.worker").info(
        "webhooks on http://%s:%d/webhooks/notion (also /healthz, /metrics)", host, port
    )
    return server, serving


def _configure_logging(log_format: LogFormat, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())  # no secret reaches the log, in any form
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    quiet_chatty_loggers()
