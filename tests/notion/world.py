"""A small world for board journeys: the emulator, a board, a database, an engine.

The bot side goes through the product's own code (NotionClient -> notion-client
-> HTTP); the person side acts through the emulator's /_emulator/ control API,
as someone clicking in Notion would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from factory.clock import SystemClock
from factory.cycle import CycleReport, run_cycle
from factory.dsl import Factory
from factory.engine import Engine, EngineConfig
from factory.store import repo
from factory.store.db import Database, open_database
from integrations.notion.board import NotionBoard
from integrations.notion.cards import new_card_properties
from integrations.notion.client import NotionClient
from integrations.notion.feedback import comment_text
from integrations.notion.ratelimit import TokenBucket
from integrations.notion.setup import setup_board
from integrations.notion.wiring import board_on
from integrations.notion_emulator import render
from integrations.notion_emulator.routes_pages import page_markdown_text
from integrations.notion_emulator.server import EmulatorServer


class World:
    def __init__(
        self,
        emulator: EmulatorServer,
        db_path: str,
        factories: Mapping[str, Factory],
        *,
        rate: float = 3.0,
        burst: int = 10,
        timeout: float = 5.0,
        max_attempts: int = 12,
        **engine_options: Any,
    ) -> None:
        self.emu = emulator
        self.control = httpx.Client(base_url=emulator.base_url, timeout=30)
        self.db: Database = open_database(f"sqlite:///{db_path}")
        self.factories = dict(factories)
        self.client = NotionClient(
            emulator.token,
            emulator.base_url,
            backoff_base=0.05,
            backoff_cap=0.5,
            max_attempts=max_attempts,
            timeout=timeout,
            bucket=TokenBucket(rate, burst),  # a fresh bucket per world, not the shared one
        )
        self.engine = Engine(
            self.db, self.factories, EngineConfig(worker_id="bot", **engine_options), SystemClock()
        )
        self.board: NotionBoard | None = None
        self.cycles = 0

    async def open(self) -> World:
        root = self.control.get("/_emulator/root").json()
        self.person_id = root["person_id"]
        made = await setup_board(
            self.client, self.factories, board_id=None, parent_page=root["page_id"]
        )
        self.board = await board_on(
            self.client, self.db, made.board.data_source_id, SystemClock().now(), know_people=True
        )
        self.bot_id = self.board.bot_id
        return self

    async def close(self) -> None:
        await self.client.aclose()
        self.control.close()
        self.db.dispose()

    # -- the person ---------------------------------------------------------------------

    def add_card(self, title: str, factory: str | None) -> str:
        """A person adds a card in Queue (no description)."""
        props = new_card_properties(title, factory or "")
        if factory is None:
            props.pop("Factory")
        assert self.board is not None
        made = self.control.post(
            "/_emulator/pages",
            json={"parent": {"data_source_id": self.board.id}, "properties": props},
        )
        made.raise_for_status()
        return made.json()["id"]

    async def add_card_with_body(self, title: str, factory: str, body: str) -> str:
        assert self.board is not None
        page = await self.client.create_page(
            {"data_source_id": self.board.id}, new_card_properties(title, factory), markdown=body
        )
        return page["id"]

    def comment(self, page_id: str, text: str) -> None:
        self.control.post(
            "/_emulator/comments", json={"page_id": page_id, "text": text}
        ).raise_for_status()

    def move(self, page_id: str, column: str) -> None:
        self.control.patch(
            f"/_emulator/pages/{page_id}",
            json={"properties": {"State": {"select": {"name": column}}}},
        ).raise_for_status()

    def configure(self, **config: Any) -> None:
        self.control.put("/_emulator/config", json=config).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return self.control.get("/_emulator/stats").json()

    # -- the bot ------------------------------------------------------------------------

    async def cycle(self) -> CycleReport:
        assert self.board is not None
        self.cycles += 1
        return await run_cycle(self.engine, self.board)

    async def until(self, done: Callable[[], bool], cycles: int = 30) -> int:
        for n in range(1, cycles + 1):
            await self.cycle()
            if done():
                return n
        raise AssertionError(f"not reached after {cycles} cycles")

    # -- looking at the card: read in-process, so it neither counts nor uses the rate limit --

    def _page(self, page_id: str) -> dict[str, Any]:
        ws = self.emu.workspace
        with ws.lock:
            return render.page(ws, ws.page(page_id))

    def column(self, page_id: str) -> str | None:
        sel = self._page(page_id)["properties"]["State"]["select"]
        return sel["name"] if sel else None

    def prop_text(self, page_id: str, name: str) -> str:
        items = self._page(page_id)["properties"][name]["rich_text"]
        return "".join(i["plain_text"] for i in items)

    def markdown(self, page_id: str) -> str:
        ws = self.emu.workspace
        with ws.lock:
            return page_markdown_text(ws, ws.page(page_id).id)

    def comments(self, page_id: str) -> list[tuple[str, str]]:
        ws = self.emu.workspace
        with ws.lock:
            found = [render.comment(ws, c) for c in ws.comments_of(page_id)]
        return [
            ("bot" if c["created_by"]["id"] == self.bot_id else "person", comment_text(c))
            for c in found
        ]

    def task(self, page_id: str) -> repo.TaskRow:
        with self.db.connect() as conn:
            return repo.find_task(conn, page_id)
