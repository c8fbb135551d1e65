"""The `nfactory` command line: the composition root that wires everything together."""

from __future__ import annotations

import asyncio
import logging
import sys
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from factory.cli.board import board_app, create_notion_card, doctor
from factory.cli.common import (
    JsonOpt,
    TaskOpt,
    board_for,
    err,
    find_card,
    notion_settings,
    now,
    one_line_errors,
    out,
    print_json,
    reply_schedule,
    runtime,
    worker_runtime,
)
from factory.cli.graph import GraphFormat, find_factory, show_graph
from factory.cli.runtime import Runtime
from factory.cli.scaffold import new
from factory.cli.start import start
from factory.cli.tasks_view import history, status
from factory.cli.workspaces import workspaces_app
from factory.cycle import CycleReport, run_cycle, run_task
from factory.settings import load_settings
from factory.statuses import TaskStatus
from factory.store import repo
from factory.store.local_comments import add_reply
from factory.terminal import SafeFormatter, shown
from factory.unknown import failures

app = typer.Typer(
    help="Drive Notion board cards through durable Python state machines.",
    no_args_is_help=True,
)
task_app = typer.Typer(help="Create cards and answer them.", no_args_is_help=True)
app.add_typer(task_app, name="task")
app.add_typer(board_app, name="board")
app.add_typer(workspaces_app, name="workspaces")
app.command()(one_line_errors(doctor))
app.command()(one_line_errors(start))
app.command()(one_line_errors(new))
app.command()(one_line_errors(status))
app.command()(one_line_errors(history))


def _show_version(value: bool) -> None:
    if value:
        out.print(f"nfactory {package_version('notion-factory')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Drive Notion board cards through durable Python state machines."""


def _problems_line(rt: Runtime) -> None:
    for problem in rt.catalog.errors:
        err.print(
            f"[yellow]warning:[/yellow] {shown(str(problem))}", highlight=False, soft_wrap=True
        )


@app.command()
@one_line_errors
def factories(
    as_json: JsonOpt = False,
    graph: Annotated[
        str | None,
        typer.Option("--graph", metavar="ID", help="Print factory ID as a Mermaid diagram."),
    ] = None,
    fmt: Annotated[
        GraphFormat,
        typer.Option("--format", help="With --graph: Mermaid text, or an SVG file (needs mmdc)."),
    ] = GraphFormat.mermaid,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="With --graph: write to this file (svg: ID.svg)."),
    ] = None,
) -> None:
    """List loaded factories and validation problems, or draw one (--graph ID)."""
    from factory.loader import load_factories

    settings = load_settings()
    catalog = load_factories(settings.workflows)
    if graph is not None:
        show_graph(find_factory(catalog, graph), fmt, output, as_json)
        return
    if fmt is not GraphFormat.mermaid or output is not None:
        raise ValueError("--format and --output go with --graph ID")
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
            table.add_row(shown(f.id), shown(f.start), str(len(f.states)), shown(f.source))
        out.print(table)
        for p in catalog.problems:
            colour = "red" if p.severity == "error" else "yellow"
            text = shown(f"{p.path}: {p.message}")
            out.print(f"[{colour}]{p.severity}[/{colour}] {text}", highlight=False)
    if catalog.errors:
        raise typer.Exit(1)


@task_app.command("create")
@one_line_errors
def task_create(
    factory: Annotated[str, typer.Option("--factory", help="The factory id to run.")],
    title: Annotated[str, typer.Option("--title", help="The card's title.")],
    body: Annotated[str, typer.Option("--body", help="The card's description.")] = "",
) -> None:
    """Create a card in Queue (on the Notion board when one is set); prints its id."""
    rt = runtime()
    if factory not in rt.catalog.factories:
        known = ", ".join(sorted(rt.catalog.factories)) or "none loaded"
        also = f" ({failures(rt.catalog.unloaded)})" if rt.catalog.unloaded else ""
        raise ValueError(f"unknown factory {factory!r}; known factories: {known}{also}")
    if not title.strip():
        raise ValueError("--title must not be empty")
    if notion_settings().board_configured:
        page_id = asyncio.run(create_notion_card(factory, title, body))
        out.print(page_id, highlight=False)
        return
    prompt = next((line.strip() for line in body.splitlines() if line.strip()), "")
    with rt.db.begin() as conn:
        task_id = repo.create_task(
            conn, factory_id=factory, title=title, prompt=prompt, context=body, now=now()
        )
    out.print(task_id, highlight=False)


@task_app.command("reply")
@one_line_errors
def task_reply(
    task: TaskOpt,
    text: Annotated[str, typer.Option("--text", help="The reply, as a person would comment.")],
    author: Annotated[
        str, typer.Option("--author", help="Who is replying (local board only).")
    ] = "you",
) -> None:
    """Answer a card waiting in Feedback: on the local board, or on an emulator board as
    its person (a comment); the next tick resumes it. On Notion, comment in Notion."""
    rt = runtime()
    found = find_card(rt.db, task)
    settings = notion_settings()
    if settings.board_configured:
        from factory.cli.emulated import comment_as_person, is_emulator
        from integrations.notion.page_refs import page_url

        if found.external_id is None:
            raise ValueError(
                f"task {found.id} is a local board card, but NOTION_BOARD_ID is set: "
                "unset it to answer local cards"
            )
        url = page_url(found.title, found.external_id)
        if not is_emulator(settings.notion_base_url):
            raise ValueError(
                f"on Notion, replies are made in Notion's comments: comment on the card {url}"
            )
        if not text.strip():
            raise ValueError("the reply is empty")
        if found.status != TaskStatus.feedback:
            raise ValueError(
                f"task {found.id} is {found.status}, not waiting for feedback; nothing to reply to"
            )
        comment_as_person(settings.notion_base_url, found.external_id, text)
        out.print(
            f"commented on {found.id[:8]} ({url}) as the emulator's person; "
            "the next `nfactory tick` (or the worker) resumes it",
            highlight=False,
            soft_wrap=True,  # the link stays whole
        )
        return
    add_reply(rt.db, found.id, text, author, now())
    out.print(f"reply recorded for {found.id}; `nfactory tick` resumes it")


@task_app.command("cancel")
@one_line_errors
def task_cancel(task: TaskOpt) -> None:
    """Cancel a card (task id, prefix or card page id): its running agent is stopped and
    the card ends Cancelled, on the local board or a Notion board alike."""
    rt = runtime()
    at = now()
    found = find_card(rt.db, task)
    with rt.db.begin() as conn:
        asked = repo.request_cancel(conn, found.id, at, by="`nfactory task cancel`")
        current = repo.get_task(conn, found.id)
    if not asked:
        raise ValueError(
            f"task {found.id} has already finished ({current.status}); nothing to cancel"
        )
    live = current.lease_owner is not None and (
        current.lease_expires_at is not None and current.lease_expires_at > at
    )
    if live:
        where = (
            f"running {shown(current.step or '-')} on worker {shown(current.lease_owner or '?')}"
        )
        then = "its agent is stopped within seconds and the card ends Cancelled"
    else:
        where = current.status
        then = "it ends Cancelled at its next tick (`nfactory start`, `tick` or `run`)"
    out.print(f"cancel requested for {found.id} ({where}); {then}", highlight=False)


@app.command()
@one_line_errors
def run(task: TaskOpt) -> None:
    """Run one card now (task id or card page id), until it waits for a human or finishes."""
    rt = worker_runtime()
    _problems_line(rt)
    task_id = asyncio.run(_find_or_take_in(rt, task))
    report = asyncio.run(_with_board(rt, lambda board: run_task(rt.engine, board, task_id)))
    _print_cycle(rt, report)
    with rt.db.connect() as conn:
        final = repo.get_task(conn, task_id)
    out.print(f"task {task_id}: [bold]{final.status}[/bold] at {shown(final.step or '-')}")
    held = bool(report.ticks) and report.ticks[-1].outcome == "held"
    if final.last_error and (held or final.status in (TaskStatus.failed, TaskStatus.blocked)):
        out.print(f"error: {shown(final.last_error)}", highlight=False)


@app.command()
@one_line_errors
def tick() -> None:
    """One cycle in the foreground: resume answered cards, run due cards, deliver effects."""
    rt = worker_runtime()
    _problems_line(rt)
    schedule = reply_schedule(rt)
    report = asyncio.run(_with_board(rt, lambda board: run_cycle(rt.engine, board, schedule)))
    _print_cycle(rt, report)


async def _with_board(rt: Runtime, work):  # type: ignore[no-untyped-def]
    async with board_for(rt) as board:
        return await work(board)


async def _find_or_take_in(rt: Runtime, ref: str) -> str:
    """A task by id, or a Notion card not yet taken in (the board is polled once for it)."""
    try:
        return find_card(rt.db, ref).id
    except repo.NotFound:
        if not notion_settings().board_configured:
            raise
    async with board_for(rt) as board:
        await board.poll(rt.engine.factories, rt.engine.clock.now(), rt.engine.unloaded)
    return find_card(rt.db, ref).id


def _print_cycle(rt: Runtime, report: CycleReport) -> None:
    intake = report.intake
    if intake is not None:
        out.print(
            f"intake: {intake.seen} cards read, {len(intake.created)} new, "
            f"{len(intake.requeued)} re-queued, {len(intake.blocked)} blocked, "
            f"{len(intake.cancelled)} cancelled",
            highlight=False,
        )
        for problem in intake.errors:
            err.print(f"[yellow]warning:[/yellow] {shown(problem)}", highlight=False)
    for problem in report.errors:
        err.print(f"[yellow]warning:[/yellow] {shown(problem)}", highlight=False)
    if not report.ticks:
        out.print("nothing to do")
    for t in report.ticks:
        line = f"{t.task_id[:8]}  {t.outcome:<10} {t.transitions:>3} transitions  {t.status}"
        out.print(shown(line + (f"  ({t.detail})" if t.detail else "")), highlight=False)
    d = report.delivery
    out.print(
        f"effects: {d.delivered} delivered, {d.superseded} coalesced, {d.failed} failed, "
        f"{d.parked} parked",
        highlight=False,
    )


@app.command()
@one_line_errors
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
@one_line_errors
def demo() -> None:
    """Run the bundled workflows end to end on a throwaway Notion board in a local emulator
    (Notion's API and rate limit, no account needed)."""
    from factory.cli.demo import run_demo

    raise typer.Exit(run_demo(out))


def main() -> None:
    # Commands other than `start` log only warnings; they still must not print card
    # text raw (logging's last-resort handler would).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.WARNING)
    app()
