"""The real `nfactory` process against the emulator, whose token is a canary.

The token is random per session: every test can look for it, in any form, in
everything the CLI printed or wrote.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.notion_emulator import render
from integrations.notion_emulator.server import EmulatorServer

NFACTORY = Path(sys.executable).with_name("nfactory")
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"

# Two 20-hex halves: every escaping (repr, bytes, JSON, URL) leaves hex as it is, so a
# half found anywhere means the token leaked in some form, whole or split by a bad byte.
HEAD, TAIL = secrets.token_hex(10), secrets.token_hex(10)
CANARY = f"ntn_{HEAD}{TAIL}"


def canary_leaks(data: str | bytes) -> list[str]:
    """The parts of the canary found in `data` (empty when none leaked)."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    return [part for part in (HEAD, TAIL) if part in text or part.upper() in text]


@pytest.fixture(scope="session")
def _canary_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(CANARY) as server:
        yield server


@pytest.fixture
def emulator(_canary_emulator: EmulatorServer) -> EmulatorServer:
    httpx.post(f"{_canary_emulator.base_url}/_emulator/reset").raise_for_status()
    return _canary_emulator


@dataclass
class Cli:
    """`nfactory` in its own folder and database, on the emulator."""

    emulator: EmulatorServer
    folder: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.control = httpx.Client(base_url=self.emulator.base_url, timeout=30)
        self.env = {
            "NOTION_TOKEN": CANARY,
            "NOTION_BASE_URL": self.emulator.base_url,
            "NFACTORY_DATABASE_URL": f"sqlite:///{self.folder / 'db.sqlite'}",
            "NFACTORY_WORKFLOWS": str(WORKFLOWS),
            # the bundled code_change needs a git repository: this project's own
            "NFACTORY_CODER_REPO": str(WORKFLOWS.parent),
            **self.env,
        }

    def environ(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("NFACTORY_", "NOTION_"))}
        return {**base, "COLUMNS": "200", **self.env, **extra}

    def __call__(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(NFACTORY), *args],
            cwd=self.folder,
            env=self.environ(**extra),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str, **extra: str) -> str:
        done = self(*args, **extra)
        assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}{done.stdout}"
        return done.stdout

    def setup_board(self, **extra: str) -> str:
        root = self.control.get("/_emulator/root").json()["page_id"]
        out = self.ok("board", "setup", "--parent-page", root, "--title", "Work", **extra)
        found = re.search(r"NOTION_BOARD_ID=([0-9a-f-]{36})", out)
        assert found is not None, out
        self.env["NOTION_BOARD_ID"] = found.group(1)
        return found.group(1)

    def add_card(self, factory: str, title: str) -> str:
        return self.ok("task", "create", "--factory", factory, "--title", title).strip()

    def column(self, page_id: str) -> str:
        ws = self.emulator.workspace
        with ws.lock:
            props = render.page(ws, ws.page(page_id))["properties"]
        return str(props["State"]["select"]["name"])

    def add_user(self, **body: Any) -> dict[str, Any]:
        made = self.control.post("/_emulator/users", json=body)
        made.raise_for_status()
        return dict(made.json())

    def comment(self, page_id: str, text: str, user_id: str | None = None) -> None:
        body: dict[str, Any] = {"page_id": page_id, "text": text}
        if user_id is not None:
            body["user_id"] = user_id
        self.control.post("/_emulator/comments", json=body).raise_for_status()

    def configure(self, **config: Any) -> None:
        self.control.put("/_emulator/config", json=config).raise_for_status()

    def requests(self) -> dict[str, int]:
        return dict(self.control.get("/_emulator/stats").json()["requests"])

    def person_id(self) -> str:
        return str(self.control.get("/_emulator/root").json()["person_id"])

    def written_files(self) -> dict[Path, bytes]:
        """Everything the CLI left in its folder: the database (and its journal), logs."""
        return {p: p.read_bytes() for p in self.folder.rglob("*") if p.is_file()}


@pytest.fixture
def cli(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Cli]:
    made = Cli(emulator, tmp_path)
    yield made
    made.control.close()
