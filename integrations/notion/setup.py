"""`nfactory board setup` and `nfactory doctor`: make a board right, or say what is wrong."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from integrations.notion import schema
from integrations.notion.board import BoardRef, resolve_board
from integrations.notion.client import NotionClient
from integrations.notion.errors import NotionError
from integrations.notion.page_refs import card_ref
from integrations.notion.repliers import USERS_UNREADABLE, UserDirectory, replier_warnings

DEFAULT_TITLE = "notion-factory board"
# Told what the board check found (None: not found) and the bot's id, to keep in the database.
Remember = Callable[[BoardRef | None, str], Awaitable[None]]


@dataclass(frozen=True)
class SetupResult:
    board: BoardRef
    created: bool
    repaired: list[str]
    remaining: list[schema.SchemaProblem]
    found: bool = False  # an existing board of that title under the parent page was used


async def setup_board(
    client: NotionClient,
    factory_ids: Iterable[str],
    *,
    board_id: str | None,
    parent_page: str | None,
    title: str = DEFAULT_TITLE,
) -> SetupResult:
    """Create a board under `parent_page` (or use the one of that title already there),
    or check and repair the board `board_id`."""
    factory_ids = sorted(factory_ids)
    found = False
    if board_id is None:
        if parent_page is None:
            raise ValueError(
                "no board yet: pass --parent-page PAGE_ID (a page shared with the integration) "
                "to create one, or set NOTION_BOARD_ID to check an existing board"
            )
        parent_page = card_ref(parent_page)
        same = await boards_titled(client, parent_page, title)
        if len(same) > 1:
            raise ValueError(
                f"{len(same)} boards titled {title!r} under page {parent_page} "
                f"({', '.join(same)}): set NOTION_BOARD_ID to the one to use, "
                "or give another --title"
            )
        if not same:
            database = await client.create_database(
                parent_page, title, schema.initial_properties(factory_ids)
            )
            source = database["data_sources"][0]["id"]
            return SetupResult(BoardRef(database["id"], source, title), True, [], [])
        board_id, found = same[0], True
    board = await resolve_board(client, board_id)
    source = await client.retrieve_data_source(board.data_source_id)
    properties = source.get("properties", {})
    patch = schema.repair(properties, factory_ids)
    repaired: list[str] = []
    if patch:
        source = await client.update_data_source(board.data_source_id, properties=patch)
        repaired = [str(p) for p in schema.check(properties, factory_ids)]
        properties = source.get("properties", {})
    remaining = schema.check(properties, factory_ids)
    return SetupResult(board, False, repaired, remaining, found)


def board_label(board: BoardRef) -> str:
    """How setup and doctor name a board: the id NOTION_BOARD_ID is set to (the database's,
    which opens the board in one request), then its data source."""
    if board.database_id is None:
        return board.data_source_id
    return f"{board.database_id}, data source {board.data_source_id}"


def board_setting(board: BoardRef) -> str:
    """What NOTION_BOARD_ID should be: the database id (it is in the board's URL), else the
    data source's."""
    return board.database_id or board.data_source_id


async def boards_titled(client: NotionClient, parent_page: str, title: str) -> list[str]:
    """The database ids of the boards (child databases) titled `title` on the page."""
    children = await client.list_children_all(parent_page)
    return [
        child["id"]
        for child in children
        if child.get("type") == "child_database"
        and child.get("child_database", {}).get("title") == title
        and not child.get("in_trash", child.get("archived", False))
    ]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def notion_checks(
    client: NotionClient,
    board_id: str | None,
    factory_ids: Iterable[str],
    allowed_repliers: Sequence[str] = (),
    remember: Remember | None = None,
) -> list[Check]:
    checks: list[Check] = []
    try:
        me = await client.me()
        checks.append(Check("token", True, f"integration {me.get('name') or me['id']}"))
    except NotionError as exc:
        return [Check("token", False, exc.hint or str(exc))]
    checks += await repliers_checks(client, allowed_repliers)
    if not board_id:
        checks.append(
            Check(
                "board",
                False,
                "NOTION_BOARD_ID is not set: run `nfactory board setup "
                "--parent-page PAGE_ID` and set it to the id it prints",
            )
        )
        return checks
    try:
        board = await resolve_board(client, board_id)
        source = await client.retrieve_data_source(board.data_source_id)
        checks.append(Check("board", True, f"{board.title or 'untitled'} ({board_label(board)})"))
    except NotionError as exc:
        if remember is not None and exc.status == 404:
            await remember(None, me["id"])
        checks.append(Check("board", False, exc.hint or str(exc)))
        return checks
    if remember is not None:
        await remember(board, me["id"])
    problems = schema.check(source.get("properties", {}), factory_ids)
    checks.append(
        Check("schema", not problems, "; ".join(str(p) for p in problems) or "all properties right")
    )
    checks.append(await _comments_check(client, board.data_source_id))
    return checks


async def repliers_checks(client: NotionClient, allowed: Sequence[str]) -> list[Check]:
    """Who can answer questions: one FIX line per allow-list entry that names no person."""
    directory = UserDirectory(client)
    await directory.load()
    checks = [] if directory.readable else [Check("repliers", False, USERS_UNREADABLE)]
    if not allowed:
        if directory.readable:
            checks.append(Check("repliers", True, "any person in the workspace may answer"))
        return checks
    repliers = await directory.resolve(allowed)
    checks += [Check("repliers", False, line) for line in replier_warnings(repliers)]
    if not checks:
        count = len(repliers.ids)
        checks.append(
            Check(
                "repliers",
                True,
                f"{count} allowed {'person' if count == 1 else 'people'} can answer",
            )
        )
    return checks


async def _comments_check(client: NotionClient, data_source_id: str) -> Check:
    """Reading comments needs a capability: try it on one card of the board."""
    first = await client.query_page(data_source_id, page_size=1)
    cards = first.get("results", [])
    if not cards:
        return Check("comments", True, "no cards yet to test reading comments on")
    try:
        await client.list_comments_page(cards[0]["id"], page_size=1)
    except NotionError as exc:
        if exc.status == 403:
            return Check(
                "comments",
                False,
                "the integration cannot read comments: enable 'Read comments' and "
                "'Insert comments' in its capabilities",
            )
        raise
    return Check("comments", True, "comments can be read")
