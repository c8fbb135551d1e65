"""Users endpoints, authentication, version header and URL errors through notion-client."""

from __future__ import annotations

from typing import Any

import httpx
import notion_client
import pytest
from notion_client import APIErrorCode, APIResponseError

from integrations.notion_emulator.server import EmulatorServer

from .helpers import call, control


async def test_me_is_the_bot(api: Any, emulator: EmulatorServer) -> None:
    me = await call(api.users.me())
    assert me["object"] == "user"
    assert me["type"] == "bot"
    assert me["id"] == emulator.workspace.bot.id
    assert me["bot"]["owner"] == {"type": "workspace", "workspace": True}


async def test_list_and_retrieve_users(api: Any, emulator: EmulatorServer) -> None:
    person = control(emulator, "POST", "/users", json={"name": "Ada", "email": "ada@x.test"})
    listed = await call(api.users.list())
    assert listed["object"] == "list" and listed["type"] == "user" and listed["user"] == {}
    ids = {u["id"] for u in listed["results"]}
    assert person["id"] in ids and emulator.workspace.bot.id in ids
    got = await call(api.users.retrieve(person["id"]))
    assert got["type"] == "person" and got["person"]["email"] == "ada@x.test"
    # Undashed ids are accepted and answered dashed.
    undashed = await call(api.users.retrieve(person["id"].replace("-", "")))
    assert undashed["id"] == person["id"]


async def test_users_pagination(api: Any, emulator: EmulatorServer) -> None:
    for i in range(5):
        control(emulator, "POST", "/users", json={"name": f"P{i}"})
    sizes = []
    cursor = None
    while True:
        page = await call(api.users.list(page_size=3, start_cursor=cursor))
        sizes.append(len(page["results"]))
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert sizes == [3, 3, 1]  # the bot, the default person and five more


async def test_unknown_user_is_404(api: Any) -> None:
    with pytest.raises(APIResponseError) as info:
        await call(api.users.retrieve("5f0c1a6e-0000-4000-8000-000000000000"))
    assert info.value.code == APIErrorCode.ObjectNotFound
    assert info.value.status == 404


def test_wrong_token_is_401_sync(emulator: EmulatorServer) -> None:
    client = notion_client.Client(auth="wrong", base_url=emulator.base_url)
    with pytest.raises(APIResponseError) as info:
        client.users.list()
    assert info.value.code == APIErrorCode.Unauthorized
    assert info.value.status == 401
    assert str(info.value) == "API token is invalid."


async def test_wrong_token_is_401_async(emulator: EmulatorServer) -> None:
    client = notion_client.AsyncClient(auth="wrong", base_url=emulator.base_url)
    with pytest.raises(APIResponseError) as info:
        await client.users.me()
    await client.aclose()
    assert info.value.code == APIErrorCode.Unauthorized


def test_raw_error_bodies(emulator: EmulatorServer) -> None:
    auth = {"Authorization": f"Bearer {emulator.token}"}
    no_version = httpx.get(f"{emulator.base_url}/v1/users/me", headers=auth)
    assert no_version.status_code == 400
    body = no_version.json()
    assert body["code"] == "missing_version" and body["object"] == "error"
    assert set(body) == {"object", "status", "code", "message", "request_id"}

    headers = {**auth, "Notion-Version": "2025-09-03"}
    bad_url = httpx.get(f"{emulator.base_url}/v1/invalid", headers=headers)
    assert bad_url.status_code == 400 and bad_url.json()["code"] == "invalid_request_url"
    wrong_method = httpx.delete(f"{emulator.base_url}/v1/users/me", headers=headers)
    assert wrong_method.json()["code"] == "invalid_request_url"

    bad_json = httpx.post(f"{emulator.base_url}/v1/pages", headers=headers, content=b"{not json")
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "invalid_json"

    bad_id = httpx.get(f"{emulator.base_url}/v1/pages/not-a-uuid", headers=headers)
    assert bad_id.status_code == 400 and bad_id.json()["code"] == "validation_error"
    assert "path.page_id should be a valid uuid" in bad_id.json()["message"]


async def test_rate_limit_reaches_the_client_as_429(emulator: EmulatorServer) -> None:
    control(emulator, "PUT", "/config", json={"rate_limit": 1, "burst": 1})
    client = notion_client.AsyncClient(auth=emulator.token, base_url=emulator.base_url, retry=False)
    await client.users.me()
    with pytest.raises(APIResponseError) as info:
        await client.users.me()
    await client.aclose()
    assert info.value.code == APIErrorCode.RateLimited
    assert int(info.value.headers["retry-after"]) >= 1


async def test_plain_async_fixture(anotion: notion_client.AsyncClient, root: str) -> None:
    page = await anotion.pages.retrieve(root.replace("-", ""))
    assert page["id"] == root
