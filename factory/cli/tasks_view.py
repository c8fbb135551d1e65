"""`nfactory status` and `nfactory history`: the cards, readable at any terminal width."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.style import Style
from rich.text import Text

from factory.cli.columns import Col, cell, dropped, fit, print_table, sized, table
from factory.cli.common import JsonOpt, TaskOpt, find_card, out, print_json, runtime
from factory.effects import StateEffect
from factory.store import progress as progress_store
from factory.store import repo
from factory.terminal import visible
from integrations.notion.page_refs import page_url

WideOpt = Annotated[
    bool, typer.Option("--wide", help="Every column, unwrapped, however wide the terminal.")
]
OneCardOpt = Annotated[
    str | None,
    typer.Option("--task", help="Only this card: task id, the short id shown, its page id or URL."),
]


def card_url(row: dict[str, Any]) -> str | None:
    """A Notion card's link (None for a card of the local board)."""
    page = row.get("external_id")
    return page_url(row.get("title") or "", page) if page else None


def short_id(task_id: str, url: str | None) -> Text:
    """The short id `status` shows, a link to the card where the terminal supports links."""
    return Text(task_id[:8], style=Style(link=url) if url else "")


def _column(state: dict[str, Any] | None) -> str | None:
    """The column a card's last delivered state effect put it in (None: none delivered)."""
    return None if state is None else StateEffect.from_payload(state).column


STATUS_COLS = [
    Col("task", 8),
    Col("title", 12, wrap=True, want=20),
    Col("state", 10, wrap=True),
    Col("last error", 12, wrap=True, want=16),
    Col("updated", 11, rank=1),
    Col("attempts", rank=2),
    Col("column", 8, rank=3, wrap=True),
    Col("factory", 8, rank=4, wrap=True),
    Col("progress", 16, rank=5, wrap=True),
    Col("url", 40, rank=6, wrap=True),
]


def status(as_json: JsonOpt = False, task: OneCardOpt = None, wide: WideOpt = False) -> None:
    """The cards: title, state, attempts, last error, updated (more with width or --wide)."""
    rt = runtime()
    one = find_card(rt.db, task).id if task is not None else None
    with rt.db.connect() as conn:
        rows = repo.list_tasks(conn)
        if one is not None:
            rows = [r for r in rows if r["id"] == one]
        progress = progress_store.lines(conn)
    docs = [
        {
            "id": r["id"],
            "title": r["title"],
            "page_id": r["external_id"],
            "url": card_url(r),
            "board": r["board_id"],
            "factory": r["factory_id"],
            "status": r["status"],
            "step": r["step"],
            "column": _column(r["board_state"]),
            "attempts": r["run_attempt"] or 0,
            "transitions": r["run_transitions"] or 0,
            "last_error": r["last_error"],
            "progress": progress[r["id"]][1] if r["id"] in progress else None,
            "updated_at": r["updated_at"],
        }
        for r in rows
    ]
    if as_json:
        print_json({"tasks": docs})
        return
    stamp = "%Y-%m-%d %H:%M:%S" if wide else "%m-%d %H:%M"
    cells = [
        {
            "task": d["id"][:8],
            "title": visible(d["title"]),
            "state": visible(f"{d['status']} ({d['step']})" if d["step"] else d["status"]),
            "attempts": str(d["attempts"]),
            "last error": visible(d["last_error"] or ""),
            "updated": f"{d['updated_at']:{stamp}}",
            "column": visible(d["column"] or "-"),
            "factory": visible(d["factory"]),
            "progress": visible(d["progress"] or ""),
            "url": d["url"] or "",
        }
        for d in docs
    ]
    every = [
        c
        for c in STATUS_COLS
        if (c.name != "progress" or any(d["progress"] for d in docs))
        and (c.name != "url" or any(d["url"] for d in docs))
    ]
    links = [d["url"] for d in docs]
    cols = _print(every, cells, links, wide)
    if "url" in {c.name for c in every} - {c.name for c in cols}:
        # too narrow for a url column: each card's link on a line of its own, by its short id
        for d in docs:
            if d["url"]:
                line = Text.assemble(short_id(d["id"], d["url"]), "  ", d["url"])
                out.print(line, soft_wrap=True)  # a link is never broken over lines


def history(task: TaskOpt, as_json: JsonOpt = False, wide: WideOpt = False) -> None:
    """The transition log of a card."""
    rt = runtime()
    found = find_card(rt.db, task)
    with rt.db.connect() as conn:
        rows = repo.history(conn, found.id)
    url = card_url({"title": found.title, "external_id": found.external_id})
    if as_json:
        print_json(
            {
                "task_id": found.id,
                "title": found.title,
                "page_id": found.external_id,
                "url": url,
                "transitions": rows,
            }
        )
        return
    head = Text.assemble(short_id(found.id, url), "  ", visible(found.title))
    if url:
        head.append(f"  {url}", style="dim")
    out.print(head, highlight=False, soft_wrap=True)
    cells = [
        {
            "#": str(r["seq"]),
            "from": visible(r["from_state"]),
            "to": visible(r["to_state"]),
            "event": visible(r["event"]),
            "reason": visible(r["reason"]),
            "attempt": str(r["attempt"]),
            "iter": "" if r["loop_iteration"] is None else str(r["loop_iteration"]),
            "at": f"{r['committed_at']:%H:%M:%S}",
            "note": visible(r["error"] or r["message"] or ""),
        }
        for r in rows
    ]
    _print(HISTORY_COLS, cells, [None] * len(cells), wide)


HISTORY_COLS = [
    Col("#", 2),
    Col("from", 6, rank=2, wrap=True),
    Col("to", 8, wrap=True),
    Col("event", 8, wrap=True),
    Col("reason", 8, rank=3, wrap=True),
    Col("attempt", rank=1),
    Col("iter", rank=4),
    Col("at", 8, rank=1),
    Col("note", 20, wrap=True, want=24),
]


def _print(
    every: list[Col], cells: list[dict[str, str]], links: list[str | None], wide: bool
) -> list[Col]:
    """The table of the columns that fit the terminal (all with `wide`), then what was
    left out. The first column's cells link to `links` where the terminal shows links."""
    every = sized(every, cells)
    cols = fit(every, out.width, wide=wide)
    t = table(cols, wide=wide)
    for row, link in zip(cells, links, strict=True):
        shown_cells = [cell(c, row[c.name], wide=wide) for c in cols]
        if link:
            shown_cells[0].stylize(Style(link=link))
        t.add_row(*shown_cells)
    print_table(out, t, wide=wide)
    left_out = [name for name in dropped(cols, every) if name != "url"]  # listed below
    if left_out:
        out.print(
            f"[dim]not shown at {out.width} columns: {', '.join(left_out)} "
            "(--wide shows all)[/dim]",
            highlight=False,
        )
    return cols
