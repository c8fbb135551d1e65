"""Real `nfactory` processes against the in-process Notion emulator, and checks on the result.

The person acts through the emulator's /_emulator/ control API; the board is
read in-process (no request counted, no rate limit used); the database is read
with SQLAlchemy. Every wait polls with a deadline instead of sleeping blindly.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from factory.store.db import Database, open_database
from factory.store.outbox import backlog
from factory.store.tables import outbox, runs, tasks, transitions
from integrations.notion.cards import new_card_properties
from integrations.notion.markdown import BOT_HEADING
from integrations.notion_emulator import render
from integrations.notion_emulator.routes_pages import page_markdown_text
from integrations.notion_emulator.server import EmulatorServer

NFACTORY = Path(sys.executable).with_name("nfactory")
REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
TERMINAL = frozenset({"Done", "Failed", "Blocked", "Cancelled"})


def wait_for(
    predicate: Callable[[], bool],
    limit: float,
    what: str,
    every: float = 0.1,
    explain: Callable[[], str] = lambda: "",
) -> float:
    """Poll `predicate` until true; the seconds it took. Fails naming `what` after `limit`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > limit:
            raise AssertionError(f"timed out after {limit:g}s waiting for {what}\n{explain()}")
        time.sleep(every)
    return time.monotonic() - start


def cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NFACTORY), *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Stage:
    """One emulator workspace with a board made by `nfactory board setup`, and the env for it."""

    emu: EmulatorServer
    cwd: Path
    env: dict[str, str]
    board_id: str
    control: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.control = httpx.Client(base_url=self.emu.base_url, timeout=30)

    @classmethod
    def create(
        cls,
        emu: EmulatorServer,
        cwd: Path,
        database_url: str,
        workflows: Path = WORKFLOWS,
        **extra: str,
    ) -> Stage:
        root = httpx.get(f"{emu.base_url}/_emulator/root").json()["page_id"]
        env = {
            "NOTION_TOKEN": emu.token,
            "NOTION_BASE_URL": emu.base_url,
            # the emulator's limit is off for these tests; let the client go fast too
            "NOTION_RATE_LIMIT": "100",
            "NOTION_BURST": "100",
            "NFACTORY_DATABASE_URL": database_url,
            "NFACTORY_WORKFLOWS": str(workflows),
            "NFACTORY_POLL_SECONDS": "0.5",
            "NFACTORY_CONCURRENCY": "4",
            "NFACTORY_SHUTDOWN_GRACE_SECONDS": "10",
            **extra,
        }
        made = cli(cwd, env, "board", "setup", "--parent-page", root, "--title", "Work")
        assert made.returncode == 0, made.stdout + made.stderr
        found = re.search(r"NOTION_BOARD_ID=([0-9a-f-]{36})", made.stdout)
        assert found is not None, made.stdout
        env["NOTION_BOARD_ID"] = found.group(1)
        return cls(emu, cwd, env, found.group(1))

    def close(self) -> None:
        self.control.close()

    # -- the person --------------------------------------------------------------------

    def add_card(self, title: str, factory: str) -> str:
        made = self.control.post(
            "/_emulator/pages",
            json={
                "parent": {"database_id": self.board_id},
                "properties": new_card_properties(title, factory),
            },
        )
        made.raise_for_status()
        return str(made.json()["id"])

    def move(self, page_id: str, column: str) -> None:
        self.control.patch(
            f"/_emulator/pages/{page_id}",
            json={"properties": {"State": {"select": {"name": column}}}},
        ).raise_for_status()

    def comment(self, page_id: str, text: str) -> None:
        self.control.post(
            "/_emulator/comments", json={"page_id": page_id, "text": text}
        ).raise_for_status()

    # -- looking at the board (in-process) ----------------------------------------------

    def column(self, page_id: str) -> str | None:
        ws = self.emu.workspace
        with ws.lock:
            sel = render.page(ws, ws.page(page_id))["properties"]["State"]["select"]
        return sel["name"] if sel else None

    def markdown(self, page_id: str) -> str:
        ws = self.emu.workspace
        with ws.lock:
            return page_markdown_text(ws, ws.page(page_id).id)

    def comments(self, page_id: str) -> list[dict[str, Any]]:
        ws = self.emu.workspace
        with ws.lock:
            return [render.comment(ws, c) for c in ws.comments_of(page_id)]

    def all_terminal(self, pages: list[str]) -> bool:
        return all(self.column(p) in TERMINAL for p in pages)


class Worker:
    """`nfactory start` in a subprocess; its output goes to files (a pipe could fill up)."""

    def __init__(self, stage: Stage, name: str, *args: str, **env: str) -> None:
        self.name = name
        self.out = stage.cwd / f"{name}.out"
        self.err = stage.cwd / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [str(NFACTORY), "start", "--log-format", "json", *args],
                cwd=stage.cwd,
                env={**os.environ, **stage.env, "NFACTORY_WORKER_ID": name, **env},
                stdout=out,
                stderr=err,
                text=True,
            )

    def logs(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, within: float) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds it took to exit)."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"worker {self.name} did not exit within {within:g}s of SIGTERM:\n{self.logs()}"
            ) from None
        return code, time.monotonic() - start

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def group_gone(pgid: int) -> bool:
    """No live process left in process group `pgid` (zombies awaiting their reaper count as
    gone: they run nothing). Linux /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return False
    return True


# -- the database ------------------------------------------------------------------------


class Db:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Database = open_database(url)

    def dispose(self) -> None:
        self.engine.dispose()

    def scalar(self, stmt: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(stmt).scalar_one()

    def task_count(self) -> int:
        return int(self.scalar(select(func.count()).select_from(tasks)))

    def leases_held(self) -> int:
        return int(
            self.scalar(
                select(func.count()).select_from(tasks).where(tasks.c.lease_owner.is_not(None))
            )
        )

    def backlog(self) -> int:
        return backlog(self.engine)

    def statuses(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tasks.c.status, func.count()).group_by(tasks.c.status))
            return {status: n for status, n in rows}

    def transitions(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(transitions).order_by(transitions.c.id)).mappings()
            return [dict(r) for r in rows]

    def runs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(runs)).mappings()]

    def tasks(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(tasks)).mappings()]

    def log_lines(self) -> dict[str, list[str]]:
        """Each card's log lines as queued in the outbox, by page id."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tasks.c.external_id, outbox.c.payload)
                .join(tasks, tasks.c.id == outbox.c.task_id)
                .where(outbox.c.kind == "log")
                .order_by(outbox.c.id)
            )
            found: dict[str, list[str]] = {}
            for page_id, payload in rows:
                found.setdefault(page_id, []).append(str(payload["line"]))
            return found


def signature(text: str) -> str:
    """Letters and digits only: survives the emulator re-rendering markdown."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def assert_log_once(stage: Stage, db: Db) -> None:
    """Every card's page has the bot's section once, and each log line in it exactly once."""
    for page_id, lines in db.log_lines().items():
        page = stage.markdown(page_id)
        assert page.count(BOT_HEADING) == 1, f"bot heading not exactly once on {page_id}:\n{page}"
        flat = signature(page)
        for line in lines:
            n = flat.count(signature(line))
            assert n == 1, f"log line {line!r} appears {n} times on {page_id}:\n{page}"


def linear_factory_source(factory_id: str, steps: tuple[str, ...], seconds: float) -> str:
    """A workflow module: `steps` in a line, each agent a sync sleep of `seconds`."""
    return textwrap.dedent(
        f"""
        import time

        from factory import action, define_factory, done, failed

        STEPS = {steps!r}


        def work(inp):
            time.sleep({seconds!r})
            return {{"status": "done", "message": f"{{inp.state_id}} by {{inp.tick_id[:8]}}"}}


        FACTORY = define_factory(
            id={factory_id!r},
            start=STEPS[0],
            states={{
                **{{
                    sid: action(work, on={{"done": nxt, "failed": "failed"}})
                    for sid, nxt in zip(STEPS, (*STEPS[1:], "done"))
                }},
                "done": done(),
                "failed": failed(),
            }},
        )
        """
    )
