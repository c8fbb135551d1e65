"""`nfactory board setup`, `nfactory doctor` and card creation on a Notion board."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from factory import worktrees
from factory.cli.common import JsonOpt, err, notion_settings, now, one_line_errors, out, print_json
from factory.loader import Catalog, load_factories
from factory.redact import redact
from factory.settings import load_settings
from factory.store.db import Database, open_database, ping
from factory.terminal import shown
from factory.threads import run_io

if TYPE_CHECKING:
    from integrations.notion.board import BoardRef
    from integrations.notion.setup import Remember

board_app = typer.Typer(help="Set up the Notion board.", no_args_is_help=True)


@board_app.command("setup")
@one_line_errors
def board_setup(
    parent_page: Annotated[
        str | None,
        typer.Option(
            "--parent-page", help="Create the board under this page (shared with the integration)."
        ),
    ] = None,
    title: Annotated[
        str, typer.Option("--title", help="Title of a new board.")
    ] = "notion-factory board",
) -> None:
    """Create a board (or find the one of that title under --parent-page), or check and
    repair the one NOTION_BOARD_ID names; prints the board id to set."""
    from integrations.notion.setup import board_setting, setup_board
    from integrations.notion.wiring import make_client

    settings = notion_settings()
    catalog = load_factories(load_settings().workflows)

    async def work():  # type: ignore[no-untyped-def]
        async with make_client(settings) as client:
            return await setup_board(
                client,
                catalog.factories,
                board_id=settings.notion_board_id if parent_page is None else None,
                parent_page=parent_page,
                title=title,
            )

    result = asyncio.run(work())
    board = result.board
    named = f"board {shown(board.title)!r}"
    if result.created:
        out.print(
            f"created {named} under page {shown(parent_page or '')}",
            highlight=False,
            soft_wrap=True,
        )
    elif result.found:
        out.print(
            f"found {named} already under page {shown(parent_page or '')}: "
            "using it, no second board created",
            highlight=False,
            soft_wrap=True,
        )
    for fixed in result.repaired:
        out.print(f"repaired: {shown(fixed)}", highlight=False)
    for problem in result.remaining:
        err.print(f"[red]cannot repair:[/red] {shown(str(problem))}", highlight=False)
    if result.remaining:
        raise typer.Exit(1)
    if not result.created:
        out.print(f"{named} is ready", highlight=False)
    # the board id `doctor` and the worker's log show
    out.print(f"NOTION_BOARD_ID={board_setting(board)}", highlight=False)
    if result.created or result.found:
        out.print("set it in .env or the environment", highlight=False)


def doctor(as_json: JsonOpt = False) -> None:
    """Check token, board, schema, comment access, database and factories; say what to fix."""
    from integrations.notion.setup import Check, notion_checks
    from integrations.notion.wiring import make_client

    engine_settings = load_settings()
    settings = notion_settings()
    catalog = load_factories(engine_settings.workflows)
    checks: list[Check] = []
    db = None
    try:
        db = open_database(engine_settings.database_url, engine_settings.sqlite_sync)
        ping(db)
        checks.append(Check("database", True, db.url.render_as_string(hide_password=True)))
    except Exception as exc:
        db = None
        checks.append(Check("database", False, str(exc).splitlines()[0]))
    errors = catalog.errors
    checks.append(
        Check(
            "factories",
            not errors,
            "; ".join(str(p) for p in errors)
            or f"{len(catalog.factories)} loaded: " + ", ".join(sorted(catalog.factories)),
        )
    )
    checks += [Check("workspace", ok, detail) for ok, detail in workspace_checks(catalog)]
    if settings.notion_token is None:
        checks.append(Check("token", False, "NOTION_TOKEN is not set"))
    else:

        async def remote() -> list[Check]:
            async with make_client(settings) as client:
                return await notion_checks(
                    client,
                    settings.notion_board_id,
                    catalog.factories,
                    settings.nfactory_allowed_repliers,
                    remember=_identity_keeper(db, settings.notion_board_id),
                )

        checks += asyncio.run(remote())
    if as_json:
        # the same checks as the text, as data; secrets redacted alike
        print_json(
            {
                "ok": all(c.ok for c in checks),
                "checks": [
                    {"name": c.name, "ok": c.ok, "detail": redact(c.detail)} for c in checks
                ],
            }
        )
    else:
        for check in checks:
            mark = "[green]OK[/green]  " if check.ok else "[red]FIX[/red] "
            detail = shown(redact(check.detail))
            out.print(f"{mark} {check.name:<10} {detail}", highlight=False)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def _identity_keeper(db: Database | None, board_id: str | None) -> Remember | None:
    """Doctor always asks Notion: what it found replaces what ticks remember (a board it
    cannot find is forgotten), so a fixed setup is used at once."""
    if db is None or not board_id:
        return None
    from integrations.notion.identity import forget, remember

    async def keep(board: BoardRef | None, bot_id: str) -> None:
        if board is None:
            await run_io(forget, db, board_id)
        else:
            await run_io(remember, db, board_id, board, bot_id, now())

    return keep


def workspace_checks(catalog: Catalog) -> list[tuple[bool, str]]:
    """(ok, detail) for each loaded factory with a workspace: repository, commits, base."""
    found = []
    for factory in sorted(catalog.factories.values(), key=lambda f: f.id):
        if factory.workspace is None:
            continue
        try:
            found.append((True, f"{factory.id}: {worktrees.check(factory.workspace, Path.cwd())}"))
        except worktrees.WorkspaceError as exc:
            found.append((False, f"{factory.id}: {exc}"))
    return found


async def create_notion_card(factory: str, title: str, body: str) -> str:
    from integrations.notion.board import resolve_board
    from integrations.notion.cards import new_card_properties
    from integrations.notion.wiring import make_client

    settings = notion_settings()
    async with make_client(settings) as client:
        board = await resolve_board(client, settings.notion_board_id or "")
        page = await client.create_page(
            {"data_source_id": board.data_source_id},
            new_card_properties(title, factory),
            markdown=body or None,
            idempotent=False,  # a second card after a lost answer is worse than an error
        )
    return str(page["id"])
