"""`nfactory start`: the long-lived worker, with a live view or structured logs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
import uvicorn
from rich.live import Live
from starlette.applications import Starlette

from factory.board_protocol import Board
from factory.cli.common import (
    board_for,
    notion_settings,
    out,
    reply_schedule,
    set_error_log,
    worker_runtime,
)
from factory.cli.live import JsonFormatter, RequestRate, render_live
from factory.cli.metrics import render as render_metrics
from factory.ops_http import ops_app
from factory.redact import RedactingFilter, install_log_redaction
from factory.shell_agent import kill_running_commands
from factory.store.db import ping
from factory.terminal import SafeFormatter
from factory.threads import configure_io, io_threads_for
from factory.unknown import health as factories_health
from factory.worker import Worker, WorkerConfig, quiet_chatty_loggers

if TYPE_CHECKING:
    from factory.cli.runtime import Runtime
    from integrations.notion.board import NotionBoard


@dataclass(frozen=True)
class Ports:
    webhook_host: str
    webhook_port: int | None
    metrics_host: str
    metrics_port: int | None
    # bound in `start` before anything else happens: a port in use is one line, not a
    # server dying after the worker has begun claiming cards
    listening: dict[int, socket.socket] = field(default_factory=dict)


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def start(
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log lines when not on a terminal.")
    ] = LogFormat.text,
    webhook_port: Annotated[
        int | None,
        typer.Option(
            "--webhook-port",
            help="Serve POST /webhooks/notion here (and /healthz, /metrics unless --metrics-port).",
        ),
    ] = None,
    webhook_host: Annotated[
        str,
        typer.Option(
            "--webhook-host", help="Interface for the webhook port (0.0.0.0: all interfaces)."
        ),
    ] = "127.0.0.1",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port", help="Serve /healthz and /metrics here, not on the webhook port."
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Interface for the metrics port.")
    ] = "127.0.0.1",
) -> None:
    """Run the worker: poll the board, run cards, deliver effects, until SIGINT/SIGTERM."""
    live = sys.stdout.isatty() and log_format is LogFormat.text
    # first: a refusal to start is a log line in the chosen format too
    _configure_logging(log_format, quiet=live)
    rt = worker_runtime()
    if webhook_port is not None and not notion_settings().board_configured:
        raise ValueError("--webhook-port needs a Notion board: set NOTION_BOARD_ID")
    if metrics_port is not None and metrics_port == webhook_port:
        raise ValueError("--metrics-port must differ from --webhook-port")
    config = WorkerConfig(
        poll_seconds=rt.settings.poll_seconds,
        concurrency=rt.settings.concurrency,
        shutdown_grace_seconds=rt.settings.shutdown_grace_seconds,
        progress_seconds=rt.settings.progress_seconds,
        replies=reply_schedule(rt),
    )
    configure_io(io_threads_for(config.concurrency))
    listening = {
        port: _listen(flag, host, port)
        for flag, host, port in (
            ("--webhook-port", webhook_host, webhook_port),
            ("--metrics-port", metrics_host, metrics_port),
        )
        if port is not None
    }
    ports = Ports(webhook_host, webhook_port, metrics_host, metrics_port, listening)
    _run(_serve(rt, config, live, ports))


def _run(main: Coroutine[Any, Any, int]) -> NoReturn:
    """asyncio.run, except that the process ends as soon as the worker has stopped.

    Threads may still run then: sync agents that overran their timeout or the grace
    (their cards already released), or a blocking call an async agent left in
    asyncio's default pool. Python cannot stop a thread, and both asyncio.run and the
    interpreter's exit would wait for it, however long. By then everything the worker
    owes is done: transitions committed, leases released, the outbox flushed.
    """
    runner = asyncio.Runner()
    try:
        code = runner.run(main)
    except BaseException:
        runner.close()
        raise
    _exit_now(code)


def _exit_now(code: int, grace: float | None = None) -> NoReturn:
    # their own sessions would outlive us; none runs after a stop. SIGTERM, then SIGKILL
    # after `grace` (default NFACTORY_CANCEL_GRACE_SECONDS; 0 when stopping at once)
    kill_running_commands(grace)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _serve(rt: Runtime, config: WorkerConfig, live: bool, ports: Ports) -> int:
    """Run until a signal; the exit status."""
    log = logging.getLogger("nfactory.worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def stopping() -> None:
        log.info("stopping: finishing running cards (signal again to stop at once)")
        stop.set()

    def on_signal(signum: int, _frame: object) -> None:
        # A plain handler, not loop.add_signal_handler: the second signal must end the
        # process even when the loop cannot run a callback (stuck, or already closed).
        nonlocal signals
        signals += 1
        if signals == 1:
            loop.call_soon_threadsafe(stopping)
        else:
            # Committed work is safe in the database; leases simply expire.
            log.warning("stopping at once")
            _exit_now(130, grace=0)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    async with board_for(rt, check_repliers=True) as board:
        worker = Worker(rt.engine, board, config)
        log.info(
            "worker %s started: board %s, %d factories, concurrency %d, poll every %.0fs",
            rt.settings.worker_id,
            notion_settings().notion_board_id or board.id,  # as set: as doctor names it
            len(rt.engine.factories),
            config.concurrency,
            config.poll_seconds,
        )
        for path, error in rt.engine.unloaded.items():
            log.warning(
                "workflow module %s failed to load: %s; cards naming a factory it may define "
                "wait in Queue until it is fixed and the worker restarted",
                path,
                error,
            )
        worker.start()
        servers = _start_servers(rt, worker, board, ports)
        if live:
            rate = RequestRate(board.request_stats)
            first = await render_live(worker, rate)
            with Live(first, console=out, refresh_per_second=2) as view:
                while not stop.is_set():
                    view.update(await render_live(worker, rate))
                    await asyncio.sleep(0.5)
        else:
            await stop.wait()
        await worker.stop()
        for server, _ in servers:
            server.should_exit = True
        for _, serving in servers:
            await serving
    running = rt.engine.agents.running
    if running:
        log.info(
            "worker stopped; not waiting for %d agent call(s) still running in their threads "
            "(overran their timeout or the grace; their cards were released)",
            running,
        )
    else:
        log.info("worker stopped")
    rt.db.dispose()
    return 0


Served = tuple[uvicorn.Server, asyncio.Task[None]]


def _start_servers(rt: Runtime, worker: Worker, board: Board, ports: Ports) -> list[Served]:
    """The webhook receiver and the operator endpoints, served in the worker's own loop.

    With --metrics-port, /healthz and /metrics leave the webhook port, so the port
    exposed to the internet serves nothing but the signed webhook path.
    """
    log = logging.getLogger("nfactory.worker")

    def health() -> dict[str, str]:
        try:
            ping(rt.db)
            database = "ok"
        except Exception as exc:
            database = f"error: {type(exc).__name__}"
        return {
            "worker": "ok" if worker.accepting else "stopping",
            "database": database,
            "factories": factories_health(rt.engine.unloaded),
        }

    def metrics() -> str:
        return render_metrics(
            worker.stats, rt.db, board.request_stats(), agents=rt.engine.agents, board_id=board.id
        )

    servers: list[Served] = []
    separate = ports.metrics_port is not None
    if ports.webhook_port is not None:
        app = _webhook_app(rt, worker, board, health, metrics, serve_ops=not separate)
        servers.append(_serve_app(app, ports.listening[ports.webhook_port]))
        where = f"http://{ports.webhook_host}:{ports.webhook_port}"
        log.info(
            "webhooks on %s/webhooks/notion%s",
            where,
            "" if separate else " (also /healthz, /metrics)",
        )
    if ports.metrics_port is not None:
        app = ops_app(health, metrics)
        servers.append(_serve_app(app, ports.listening[ports.metrics_port]))
        where = f"http://{ports.metrics_host}:{ports.metrics_port}"
        log.info("health and metrics on %s/healthz and %s/metrics", where, where)
    return servers


def _webhook_app(
    rt: Runtime,
    worker: Worker,
    board: Board,
    health: Callable[[], dict[str, str]],
    metrics: Callable[[], str],
    serve_ops: bool,
) -> Starlette:
    from integrations.notion.wiring import webhook_app

    return webhook_app(
        notion_settings(),
        rt.db,
        cast("NotionBoard", board),  # --webhook-port is refused without a Notion board
        wake=worker.wake,
        hint=worker.hint,
        health=health,
        metrics=metrics,
        serve_ops=serve_ops,
    )


def _listen(flag: str, host: str, port: int) -> socket.socket:
    """A socket bound to host:port; ValueError (one line) when it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = exc.strerror or type(exc).__name__
        raise ValueError(f"{flag} {port}: cannot listen on {host}:{port}: {why}") from None
    return sock


def _serve_app(app: Starlette, sock: socket.socket) -> Served:
    # log_config=None: uvicorn's loggers get no handlers of their own and reach the root
    # handler, so its lines are in --log-format's format (and redacted) like every other
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", log_config=None)
    )
    install_log_redaction()  # any handler made since start, redacted all the same
    # the worker owns SIGINT/SIGTERM; uvicorn would capture them and raise them again
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]
    return server, asyncio.create_task(server.serve(sockets=[sock]))


def _configure_logging(log_format: LogFormat, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())  # no secret reaches the log, in any form
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    logging.captureWarnings(True)  # Python's warnings are lines in the same format
    quiet_chatty_loggers()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # as quiet as before start's
    set_error_log(log_format is LogFormat.json)
