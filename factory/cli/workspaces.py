"""`nfactory workspaces`: each run's git worktree, and pruning those of finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from factory import worktrees
from factory.cli.common import JsonOpt, err, one_line_errors, out, print_json, runtime
from factory.store import repo
from factory.terminal import shown
from factory.workspaces import human_size

workspaces_app = typer.Typer(
    help="List each run's git worktree; `prune` removes those of finished runs.",
    invoke_without_command=True,
)


def _rows(include_removed: bool) -> list[dict[str, Any]]:
    rt = runtime()
    with rt.db.connect() as conn:
        rows = repo.list_workspaces(conn)
    found = []
    for r in rows:
        path = Path(r["workspace_path"]) if r["workspace_path"] else None
        on_disk = path is not None and worktrees.path_state(path) == "worktree"
        if r["workspace_state"] == "removed" and not on_disk and not include_removed:
            continue
        if r["active"]:
            state = "in use" if on_disk else "not made yet"
        elif r["workspace_state"] == "removed" and not on_disk:
            state = "removed"
        elif not on_disk:
            state = "missing"
        else:
            state = "kept" if r["workspace_state"] == "kept" else "left over"
        found.append(
            {
                "task_id": r["task_id"],
                "card": r["title"],
                "run_id": r["run_id"],
                "run_status": r["status"],
                "branch": r["workspace_branch"],
                "path": str(path) if path else None,
                "state": state,
                "size": worktrees.size(path) if on_disk and path else None,
            }
        )
    return found


@workspaces_app.callback()
@one_line_errors
def workspaces(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    include_removed: Annotated[
        bool, typer.Option("--all", help="Also list the worktrees already removed.")
    ] = False,
) -> None:
    """Each run's git worktree: card, run, branch, path, state and size on disk."""
    if ctx.invoked_subcommand is not None:
        return
    rows = _rows(include_removed)
    if as_json:
        print_json({"workspaces": rows})
        return
    if not rows:
        out.print("no workspaces")
        return
    table = Table("card", "task", "run", "branch", "path", "state", "size")
    for r in rows:
        table.add_row(
            shown(r["card"]),
            r["task_id"][:8],
            f"{r['run_id'][:8]} ({r['run_status']})",
            shown(r["branch"] or "-"),
            shown(r["path"] or "-"),
            r["state"],
            human_size(r["size"]) if r["size"] is not None else "-",
        )
    out.print(table)


@workspaces_app.command("prune")
@one_line_errors
def prune(
    force: Annotated[
        bool,
        typer.Option("--force", help="Also remove worktrees holding uncommitted changes."),
    ] = False,
) -> None:
    """Remove the worktrees of finished runs (their branches stay: the commits are the work)."""
    rt = runtime()
    with rt.db.connect() as conn:
        rows = [r for r in repo.list_workspaces(conn) if not r["active"]]
    removed = kept = 0
    for r in rows:
        if r["workspace_state"] == "removed" or not r["workspace_path"]:
            continue
        path = Path(r["workspace_path"])
        label = shown(f"{r['workspace_branch']} ({path})")
        if worktrees.path_state(path) == "worktree":
            if not force and worktrees.is_dirty(path):
                kept += 1
                out.print(f"kept {label}: it has uncommitted changes", highlight=False)
                continue
            try:
                worktrees.remove(path, force=force)
            except worktrees.WorkspaceError as exc:
                kept += 1
                err.print(f"[yellow]kept[/yellow] {label}: {shown(str(exc))}", highlight=False)
                continue
            removed += 1
            out.print(f"removed {label}", highlight=False)
        with rt.db.begin() as conn:
            repo.mark_workspace(conn, r["run_id"], "removed")
    hint = " (--force removes those with uncommitted changes)" if kept and not force else ""
    out.print(f"pruned: {removed} removed, {kept} kept{hint}", highlight=False)
