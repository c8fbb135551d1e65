"""Replaying the recorded Notion traffic against the emulator.

Each recorded cassette is a short scenario (create a page, append blocks, list
them, delete the page...). The replayer sends the same requests in the same
order, with every recorded id replaced by the id the emulator gave the same
object earlier in the scenario, and compares each answer with Notion's by shape
(see shapes.py). Ids are learned by walking the recorded and emulated answers
side by side.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from integrations.notion_emulator.app import ALL_ROUTES, V1Dispatcher
from integrations.notion_emulator.ids import parse_id
from integrations.notion_emulator.store import Workspace

from .shapes import compare, pair_elements

RECORDED = Path(__file__).resolve().parents[3] / "shared" / "notion-recorded" / "interactions.json"

# Ids that exist before any recorded scenario starts, on Notion and in the emulator.
RECORDED_ROOT_PAGE = "393abc1e-edcd-80f3-813b-e205934558c6"
RECORDED_BOT = "7775f3a3-893f-43fa-b625-460c61094c78"
RECORDED_PERSON = "a4f789cc-7bc8-4cf0-82b9-a8ba7d985ecf"
RECORDED_WORKSPACE = "231674b6-2cc1-46bc-b742-c5c9fe4b9c73"

_UUID_IN_PATH = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
    r"[0-9a-fA-F]{12}"
)


def load() -> list[dict[str, Any]]:
    return json.loads(RECORDED.read_text())


def template_of(method: str, path: str) -> str:
    route, _, template = V1Dispatcher(ALL_ROUTES).match(method, path)
    return template if route else re.sub(_UUID_IN_PATH, "{id}", path)


def supported(record: dict[str, Any]) -> bool:
    route, _, _ = V1Dispatcher(ALL_ROUTES).match(record["method"], record["path"])
    if route is not None:
        return True
    # An invalid URL is answered by the emulator too: that error *is* the endpoint.
    return record["status"] == 400 and record["response"].get("code") == "invalid_request_url"


def _key(value: str) -> str:
    return parse_id(value) or value


@dataclass
class IdMap:
    known: dict[str, str] = field(default_factory=dict)

    def learn(self, recorded: Any, emulated: Any) -> None:
        is_id = isinstance(recorded, str) and (parse_id(recorded) or recorded.startswith("task_"))
        if is_id and isinstance(emulated, str):
            self.known.setdefault(_key(recorded), emulated)

    def walk(self, recorded: Any, emulated: Any) -> None:
        if isinstance(recorded, dict) and isinstance(emulated, dict):
            for key in recorded.keys() & emulated.keys():
                if key in ("id", "next_cursor", "discussion_id") or key.endswith("_id"):
                    self.learn(recorded[key], emulated[key])
                self.walk(recorded[key], emulated[key])
        elif isinstance(recorded, list) and isinstance(emulated, list) and recorded:
            for i, j in pair_elements(recorded, emulated):
                if j is not None:
                    self.walk(recorded[j], emulated[i])

    def sub(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.sub(v) for v in value]
        if isinstance(value, str):
            return self.known.get(_key(value), value)
        return value

    def sub_path(self, path: str) -> str:
        return "/".join(self.sub(part) for part in path.split("/"))


@dataclass
class Outcome:
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def replay(
    client: httpx.Client, ws: Workspace, token: str, records: list[dict[str, Any]]
) -> Outcome:
    seed = {
        RECORDED_ROOT_PAGE: ws.root_id,
        RECORDED_BOT: ws.bot.id,
        RECORDED_PERSON: ws.person.id,
        RECORDED_WORKSPACE: ws.workspace_id,
    }
    scenarios: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        scenarios[record["cassette"]].append(record)
    outcome = Outcome()
    for name, steps in scenarios.items():
        ids = IdMap(dict(seed))
        for record in sorted(steps, key=lambda r: r["index"]):
            where = f"{name}#{record['index']} {record['method']} {record['path']}"
            if not supported(record):
                outcome.skipped[
                    f"{record['method']} {template_of(record['method'], record['path'])}"
                ] += 1
                continue
            headers = {"Notion-Version": record["notion_version"] or "2025-09-03"}
            # The recorded 401s were made with a bad token; replay them the same way.
            bearer = "not-the-token" if record["status"] == 401 else token
            headers["Authorization"] = f"Bearer {bearer}"
            response = client.request(
                record["method"],
                ids.sub_path(record["path"]),
                params=ids.sub(record["query"] or {}),
                json=ids.sub(record["request"]) if record["request"] is not None else None,
                headers=headers,
            )
            got = response.json()
            outcome.checked += 1
            diffs = []
            if response.status_code != record["status"]:
                diffs.append(
                    f"HTTP status: expected {record['status']}, got {response.status_code}"
                )
            diffs.extend(compare(record["response"], got))
            if diffs:
                outcome.mismatches.append(where + "\n    " + "\n    ".join(diffs))
            ids.walk(record["response"], got)
    return outcome
