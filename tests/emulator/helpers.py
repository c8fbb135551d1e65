"""Small helpers for the emulator client tests."""

from __future__ import annotations

import inspect
from typing import Any

import httpx

from integrations.notion_emulator.server import EmulatorServer


async def call(result: Any) -> Any:
    """Await async client results; pass sync ones through."""
    return await result if inspect.isawaitable(result) else result


def text(content: str, **annotations: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "text", "text": {"content": content}}
    if annotations:
        item["annotations"] = annotations
    return item


def control(emulator: EmulatorServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{emulator.base_url}/_emulator{path}", **kwargs)
    response.raise_for_status()
    return response.json()
