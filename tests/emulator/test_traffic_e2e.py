"""Rate limits, faults, outages and stats as the real notion-client sees them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import notion_client
import pytest
from notion_client.errors import APIResponseError, RequestTimeoutError, UnknownHTTPResponseError

from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig

TOKEN = "secret_traffic_e2e"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    # Startup config without a limiter: each test turns on what it exercises and
    # the reset below puts this config back.
    with EmulatorServer(TOKEN, config=EmulatorConfig(rate_limit=0)) as emu:
        yield emu


@pytest.fixture
def emu(server: EmulatorServer) -> EmulatorServer:
    httpx.post(f"{server.base_url}/_emulator/reset").raise_for_status()
    return server


def configure(emu: EmulatorServer, **patch: Any) -> dict[str, Any]:
    response = httpx.put(f"{emu.base_url}/_emulator/config", json=patch)
    response.raise_for_status()
    return response.json()


def stats(emu: EmulatorServer) -> dict[str, Any]:
    return httpx.get(f"{emu.base_url}/_emulator/stats").json()


def root_page(emu: EmulatorServer) -> str:
    return httpx.get(f"{emu.base_url}/_emulator/root").json()["page_id"]


def client(emu: EmulatorServer, **options: Any) -> notion_client.Client:
    return notion_client.Client(auth=TOKEN, base_url=emu.base_url, **options)


def test_hammering_past_the_limit_gets_rate_limited(emu: EmulatorServer) -> None:
    configure(emu, rate_limit=3, burst=2)
    errors: list[APIResponseError] = []
    with client(emu, retry=False) as notion:
        started = time.monotonic()
        for _ in range(10):
            try:
                notion.users.me()
            except APIResponseError as exc:
                errors.append(exc)
        elapsed = time.monotonic() - started
    # The burst plus whatever refilled while we hammered, however slow the host.
    assert 10 - len(errors) <= 2 + 3 * elapsed + 1e-6
    assert errors
    for exc in errors:
        assert exc.code == "rate_limited" and exc.status == 429
        assert int(exc.headers["retry-after"]) >= 1
    counted = stats(emu)
    assert counted["rate_limited"] == len(errors)
    assert counted["requests"] == {"GET /v1/users/me": 10}
    assert counted["total"] == 10


def test_a_client_honouring_retry_after_gets_through(emu: EmulatorServer) -> None:
    configure(emu, rate_limit=3, burst=1)
    with client(emu) as notion:  # notion-client's default: retries 429 after Retry-After
        started = time.monotonic()
        notion.users.me()
        notion.users.me()
        assert time.monotonic() - started >= 1.0
    assert stats(emu)["rate_limited"] == 1


def test_rate_limits_are_per_integration_token(emu: EmulatorServer) -> None:
    configure(emu, rate_limit=1, burst=1)
    with client(emu, retry=False) as notion:
        notion.users.me()
        with pytest.raises(APIResponseError) as refused:
            notion.users.me()
        assert refused.value.code == "rate_limited"
    # A stranger's token has its own bucket: it gets 401, not 429.
    with notion_client.Client(auth="secret_other", base_url=emu.base_url, retry=False) as other:
        with pytest.raises(APIResponseError) as denied:
            other.users.me()
        assert denied.value.code == "unauthorized"


def test_fault_rate_one_fails_every_call_with_service_unavailable(emu: EmulatorServer) -> None:
    page_id = root_page(emu)
    configure(emu, fault_rate=1.0, fault_statuses=[503])
    calls = [
        lambda n: n.users.me(),
        lambda n: n.pages.retrieve(page_id=page_id),
        lambda n: n.comments.create(
            parent={"page_id": page_id}, rich_text=[{"text": {"content": "hi"}}]
        ),
        lambda n: n.blocks.children.list(block_id=page_id),
    ]
    with client(emu, retry=False) as notion:
        for call in calls:
            with pytest.raises(APIResponseError) as failed:
                call(notion)
            assert failed.value.code == "service_unavailable" and failed.value.status == 503
    counted = stats(emu)
    assert counted["faults"] == {"503": 4} and counted["faults_total"] == 4
    assert counted["requests"]["POST /v1/comments"] == 1
    assert counted["requests"]["GET /v1/pages/{page_id}"] == 1


async def test_async_client_sees_gateway_timeout_and_bad_gateway(emu: EmulatorServer) -> None:
    async with notion_client.AsyncClient(auth=TOKEN, base_url=emu.base_url, retry=False) as n:
        configure(emu, fault_rate=1.0, fault_statuses=[504])
        with pytest.raises(APIResponseError) as timed_out:
            await n.users.me()
        assert timed_out.value.code == "gateway_timeout"
        configure(emu, fault_statuses=[502])
        with pytest.raises(UnknownHTTPResponseError) as bad_gateway:
            await n.users.me()
        assert bad_gateway.value.status == 502
    assert stats(emu)["faults"] == {"502": 1, "504": 1}


def outcomes(notion: notion_client.Client, n: int) -> list[str]:
    seen: list[str] = []
    for _ in range(n):
        try:
            notion.users.me()
            seen.append("ok")
        except (APIResponseError, UnknownHTTPResponseError) as exc:
            seen.append(str(exc.status))
    return seen


def test_same_seed_replays_the_same_faults_over_http(emu: EmulatorServer) -> None:
    with client(emu, retry=False) as notion:
        configure(emu, fault_rate=0.5, seed=2026)
        first = outcomes(notion, 30)
        httpx.post(f"{emu.base_url}/_emulator/reset").raise_for_status()
        configure(emu, fault_rate=0.5, seed=2026)
        assert outcomes(notion, 30) == first
    assert "ok" in first and len(set(first)) > 2
    assert stats(emu)["seed"] == 2026


def test_outage_window_then_recovery(emu: EmulatorServer) -> None:
    configure(emu, outage={"start": 0, "end": 60})
    with client(emu, retry=False) as notion:
        with pytest.raises(APIResponseError) as down:
            notion.users.me()
        assert down.value.code == "service_unavailable"
        configure(emu, outage=None)
        assert notion.users.me()["object"] == "user"
    assert stats(emu)["outage_rejections"] == 1


def test_added_latency_slows_every_request(emu: EmulatorServer) -> None:
    configure(emu, latency_ms=150)
    with client(emu) as notion:
        started = time.monotonic()
        notion.users.me()
        assert time.monotonic() - started >= 0.15


def test_a_delayed_request_outlasts_the_clients_timeout(emu: EmulatorServer) -> None:
    configure(emu, timeout_rate=1.0, timeout_seconds=0.5)
    with client(emu, retry=False, timeout_ms=150) as notion, pytest.raises(RequestTimeoutError):
        notion.users.me()
    configure(emu, timeout_rate=0.0)
    with client(emu, retry=False) as notion:
        assert notion.users.me()["object"] == "user"
    counted = stats(emu)
    assert counted["delayed"] == 1 and counted["total"] == 2


def test_control_api_rejects_bad_config_naming_the_field(emu: EmulatorServer) -> None:
    response = httpx.put(f"{emu.base_url}/_emulator/config", json={"burst": 0})
    assert response.status_code == 400
    assert "burst" in response.json()["message"]
    response = httpx.put(f"{emu.base_url}/_emulator/config", json={"fault_statuses": [418]})
    assert response.status_code == 400
    assert "fault_statuses" in response.json()["message"]


def test_reset_turns_faults_back_off(emu: EmulatorServer) -> None:
    configure(emu, fault_rate=1.0, fault_statuses=[500])
    httpx.post(f"{emu.base_url}/_emulator/reset").raise_for_status()
    with client(emu, retry=False) as notion:
        assert notion.users.me()["object"] == "user"
    assert stats(emu)["faults_total"] == 0
