"""The `nfactory` command line: the composition root that wires everything together."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from factory.cycle import CycleReport, run_cycle, run_task
from factory.local_board import add_reply
from factory.runtime import Runtime, open_runtime
from factory.settings import SettingsError, load_settings
from factory.store import repo
from factory.store.db import DatabaseError
from factory.store.leases import LeaseHeld
from factory.validate import FactoryError

app = typer.Typer(
    help="Drive Notion board cards through durable Python state machines.",
    no_args_is_help=True,
    add_completion=False,
)
task_app = typer.Typer(help="Create and answer cards on the local board.", no_args_is_help=True)
app.add_typer(task_app, name="task")

out = Console()
err = Console(stderr=True)

EXPECTED = (SettingsError, DatabaseError, repo.NotFound, LeaseHeld, FactoryError, ValueError)
F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
TaskOpt = Annotated[str, typer.Option("--task", help="Task id (or a unique prefix of it).")]


def command(fn: F) -> F:
    """Every command fails with one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EXPECTED as exc:
            err.print(f"[red]error:[/red] {escape(one_line(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def one_line(exc: BaseException) -> str:
    """The reason on one line: database drivers report over several and add a docs link."""
    lines = (line.strip() for line in str(exc).splitlines())
    return " ".join(x for x in lines if x and not x.startswith("(Background on this error"))


def runtime() -> Runtime:
    return open_runtime(load_settings())


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, default=_json_default, indent=2) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _problems_line(rt: Runtime) -> None:
    for problem in rt.catalog.errors:
        err.print(
            f"[yellow]warning:[/yellow] {escape(str(problem))}", highlight=False, soft_wrap=True
        )


@app.command()
@command
def factories(as_json: JsonOpt = False) -> None:
    """List loaded factories and validation problems."""
    settings = load_settings()
    from factory.loader import load_factories

    catalog = load_factories(settings.workflows)
    if as_json:
        print_json(
            {
                "factories": [
                    {"id": f.id, "start": f.start, "states": list(f.states), "source": f.source}
                    for f in catalog.factories.values()
                ],
                "problems": [
                    {"path": p.path, "severity": p.severity, "message": p.message}
                    for p in catalog.problems
                ],
            }
        )
    else:
        table = Table("factory", "start", "states", "source")
        for f in catalog.factories.values():
            table.add_row(escape(f.id), escape(f.start), str(len(f.states)), escape(f.source))
        out.print(table)
        for p in catalog.problems:
            colour = "red" if p.severity == "error" else "yellow"
            text = escape(f"{p.path}: {p.message}")
            out.print(f"[{colour}]{p.severity}[/{colour}] {text}", highlight=False)
    if catalog.errors:
        raise typer.Exit(1)


@task_app.command("create")
@command
def task_create(
    factory: Annotated[str, typer.Option("--factory", help="The factory id to run.")],
    title: Annotated[str, typer.Option("--title", help="The card's title.")],
    body: Annotated[str, typer.Option("--body", help="The card's description.")] = "",
) -> None:
    """Create a card in Queue on the local board; prints its task id."""
    rt = runtime()
    if factory not in rt.catalog.factories:
        known = ", ".join(sorted(rt.catalog.factories)) or "none loaded"
        raise ValueError(f"unknown factory {factory!r}; known factories: {known}")
    if not title.strip():
        raise ValueError("--title must not be empty")
    prompt = next((line.strip() for line in body.splitlines() if line.strip()), "")
    with rt.db.begin() as conn:
        task_id = repo.create_task(
            conn, factory_id=factory, title=title, prompt=prompt, context=body, now=_now()
        )
    sys.stdout.write(task_id + "\n")


@task_app.command("reply")
@command
def task_reply(
    task: TaskOpt,
    text: Annotated[str, typer.Option("--text", help="The reply, as a person would comment.")],
    author: Annotated[str, typer.Option("--author", help="Who is replying.")] = "you",
) -> None:
    """Answer a card waiting in feedback; the next tick resumes it."""
    rt = runtime()
    with rt.db.connect() as conn:
        task_id = repo.find_task(conn, task).id
    add_reply(rt.db, task_id, text, author, _now())
    out.print(f"reply recorded for {task_id}; `nfactory tick` resumes it")


@app.command()
@command
def run(task: TaskOpt) -> None:
    """Run one card now, until it waits for a human or finishes."""
    rt = runtime()
    _problems_line(rt)
    with rt.db.connect() as conn:
        task_id = repo.find_task(conn, task).id
    report = asyncio.run(run_task(rt.engine, rt.board, task_id))
    _print_cycle(rt, report)
    with rt.db.connect() as conn:
        final = repo.get_task(conn, task_id)
    out.print(f"task {task_id}: [bold]{final.status}[/bold] at {escape(final.step or '-')}")
    if final.last_error and final.status in ("failed", "blocked"):
        out.print(f"error: {escape(final.last_error)}", highlight=False)


@app.command()
@command
def tick() -> None:
    """One cycle in the foreground: resume answered cards, run due cards, deliver effects."""
    rt = runtime()
    _problems_line(rt)
    report = asyncio.run(run_cycle(rt.engine, rt.board))
    _print_cycle(rt, report)


def _print_cycle(rt: Runtime, report: CycleReport) -> None:
    if not report.ticks:
        out.print("nothing to do")
    for t in report.ticks:
        line = f"{t.task_id[:8]}  {t.outcome:<10} {t.transitions:>3} transitions  {t.status}"
        out.print(escape(line + (f"  ({t.detail})" if t.detail else "")), highlight=False)
    d = report.delivery
    out.print(
        f"effects: {d.delivered} delivered, {d.superseded} coalesced, {d.failed} failed, "
        f"{d.parked} parked",
        highlight=False,
    )


@app.command()
@command
def status(as_json: JsonOpt = False) -> None:
    """A table of tasks: factory, state, board column, attempts, last error, updated."""
    rt = runtime()
    with rt.db.connect() as conn:
        rows = repo.list_tasks(conn)
    docs = [
        {
            "id": r["id"],
            "title": r["title"],
            "factory": r["factory_id"],
            "status": r["status"],
            "step": r["step"],
            "column": (r["board_state"] or {}).get("column"),
            "attempts": r["run_attempt"] or 0,
            "transitions": r["run_transitions"] or 0,
            "last_error": r["last_error"],
            "updated_at": r["updated_at"],
        }
        for r in rows
    ]
    if as_json:
        print_json({"tasks": docs})
        return
    table = Table(
        "task", "title", "factory", "state", "column", "attempts", "last error", "updated"
    )
    for d in docs:
        table.add_row(
            d["id"][:8],
            escape(d["title"]),
            escape(d["factory"]),
            escape(f"{d['status']} ({d['step']})" if d["step"] else d["status"]),
            escape(d["column"] or "-"),
            str(d["attempts"]),
            escape((d["last_error"] or "")[:60]),
            f"{d['updated_at']:%Y-%m-%d %H:%M:%S}",
        )
    out.print(table)


@app.command()
@command
def history(task: TaskOpt, as_json: JsonOpt = False) -> None:
    """The transition log of a task."""
    rt = runtime()
    with rt.db.connect() as conn:
        task_id = repo.find_task(conn, task).id
        rows = repo.history(conn, task_id)
    if as_json:
        print_json({"task_id": task_id, "transitions": rows})
        return
    table = Table("#", "from", "to", "event", "reason", "attempt", "iter", "at", "note")
    for r in rows:
        table.add_row(
            str(r["seq"]),
            escape(r["from_state"]),
            escape(r["to_state"]),
            escape(r["event"]),
            escape(r["reason"]),
            str(r["attempt"]),
            "" if r["loop_iteration"] is None else str(r["loop_iteration"]),
            f"{r['committed_at']:%H:%M:%S}",
            escape((r["error"] or r["message"] or "")[:60]),
        )
    out.print(table)


@app.command()
@command
def emulator(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8787,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    token: Annotated[
        str | None, typer.Option(help="Integration token (default: NOTION_TOKEN, else printed).")
    ] = None,
) -> None:
    """Serve the local Notion API emulator."""
    from integrations.notion_emulator.server import serve

    serve(host=host, port=port, token=token)


@app.command()
@command
def demo() -> None:
    """Run the bundled workflows end to end on a throwaway local board."""
    from factory.demo import run_demo

    raise typer.Exit(run_demo(out))


def _now() -> datetime:
    return datetime.now(UTC)


def main() -> None:
    app()
