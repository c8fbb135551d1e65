"""NotionClient against the emulator over HTTP: pacing, retries, failures, pagination, secrecy."""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from integrations.notion.client import NotionClient, template
from integrations.notion.errors import NotionError
from integrations.notion.ratelimit import TokenBucket, clear_shared_buckets
from integrations.notion_emulator.server import EmulatorServer, free_port
from integrations.notion_emulator.traffic import EmulatorConfig
from tests.notion.conftest import MakeClient

FAST = 200.0  # requests/second: a client bucket that never holds a test back


def configure(emulator: EmulatorServer, **config: Any) -> None:
    httpx.put(f"{emulator.base_url}/_emulator/config", json=config).raise_for_status()


def emulator_stats(emulator: EmulatorServer) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{emulator.base_url}/_emulator/stats").json()
    return stats


def reset(emulator: EmulatorServer) -> None:
    httpx.post(f"{emulator.base_url}/_emulator/reset").raise_for_status()


def root_page(emulator: EmulatorServer) -> str:
    page_id: str = httpx.get(f"{emulator.base_url}/_emulator/root").json()["page_id"]
    return page_id


async def new_board(client: NotionClient, emulator: EmulatorServer) -> str:
    """A database under the root page; its data source id."""
    made = await client.create_database(
        root_page(emulator), "Board", {"Name": {"title": {}}, "Note": {"rich_text": {}}}
    )
    data_source_id: str = made["data_sources"][0]["id"]
    return data_source_id


def title(text: str) -> dict[str, Any]:
    return {"Name": {"title": [{"type": "text", "text": {"content": text}}]}}


# -- pacing -------------------------------------------------------------------------------


async def test_clients_sharing_a_token_at_notions_rate_never_see_a_429(
    emulator: EmulatorServer,
) -> None:
    """Emulator at 3/s, three clients at 3/s on one token: 30 requests, zero 429s."""
    clear_shared_buckets()  # a bucket fresh for this test, then shared by all three clients
    clients = [
        NotionClient(emulator.token, emulator.base_url, rate=3, burst=3, max_attempts=1)
        for _ in range(3)
    ]
    assert clients[0].bucket is clients[1].bucket is clients[2].bucket
    page = root_page(emulator)
    try:
        started = time.monotonic()
        calls: list[Awaitable[dict[str, Any]]] = []
        for client in clients:
            calls += [client.me() for _ in range(5)]
            calls += [client.retrieve_page(page) for _ in range(5)]
        await asyncio.gather(*calls)
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            await client.aclose()
        clear_shared_buckets()
    stats = emulator_stats(emulator)
    assert stats["rate_limited"] == 0
    assert stats["total"] == 30 == sum(c.stats.total for c in clients)
    # 3 at once, then one every 1/3 s: the whole run takes (30 - 3) / 3 = 9 s.
    achieved = (30 - 3) / elapsed
    assert 2.0 <= achieved <= 3.05, f"{achieved:.2f} requests/s"


async def test_a_client_faster_than_notion_recovers_from_429s(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    """Rate-limited requests wait Retry-After (the whole bucket pauses) and then succeed."""
    configure(emulator, rate_limit=3, burst=3)
    client = make_client(rate=FAST, burst=20, max_attempts=10)
    results = await asyncio.gather(*(client.me() for _ in range(12)))
    assert len(results) == 12
    stats = emulator_stats(emulator)
    assert stats["rate_limited"] > 0
    assert client.stats.rate_limited == stats["rate_limited"] == client.stats.retries
    assert client.stats.errors == {"rate_limited": stats["rate_limited"]}
    assert stats["total"] == 12 + stats["rate_limited"]


async def test_a_429_pauses_every_client_on_the_bucket(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    bucket = TokenBucket(FAST, 10)
    told, other = make_client(bucket=bucket), make_client(bucket=bucket)
    configure(emulator, rate_limit=0, fault_rate=1.0, fault_statuses=[429], seed=1)
    first = asyncio.create_task(told.me())
    for _ in range(2000):  # until the first answer, a 429, is in
        if told.stats.rate_limited:
            break
        await asyncio.sleep(0.005)
    # The emulator said Retry-After: 1. Notion recovers now, but the bucket stays paused.
    pause_end = bucket.paused_until
    assert pause_end - time.monotonic() > 0.5
    configure(emulator, fault_rate=0.0)
    await other.me()
    assert time.monotonic() >= pause_end  # the other client did not go before the pause ended
    await first
    assert other.stats.total == 1  # it waited instead of being refused


# -- retries ------------------------------------------------------------------------------


async def test_every_request_succeeds_under_30_percent_faults(
    emulator: EmulatorServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nfactory.notion")
    setup = make_client(rate=FAST, burst=20)
    data_source = await new_board(setup, emulator)
    pages = [
        (await setup.create_page({"data_source_id": data_source}, title(f"card {n}")))["id"]
        for n in range(4)
    ]
    configure(
        emulator,
        rate_limit=0,
        fault_rate=0.3,
        fault_statuses=[429, 500, 502, 503, 504],
        seed=20261123,
    )
    client = make_client(rate=FAST, burst=20, max_attempts=12)
    before = emulator_stats(emulator)["total"]
    calls: list[Awaitable[Any]] = []
    for n in range(10):
        page = pages[n % len(pages)]
        calls += [
            client.me(),
            client.retrieve_page(page),
            client.update_page(page, properties={"Note": _text(f"edit {n}")}),
            client.query_page(data_source, page_size=10),
        ]
    results = await asyncio.gather(*calls)
    assert len(results) == 40 and all(isinstance(r, dict) for r in results)

    stats = emulator_stats(emulator)
    assert stats["faults_total"] > 0
    # Each injected fault cost exactly one retry, and nothing else failed.
    assert client.stats.retries == stats["faults_total"]
    assert sum(client.stats.errors.values()) == stats["faults_total"]
    assert client.stats.total == stats["total"] - before == 40 + stats["faults_total"]
    assert client.stats.rate_limited == stats["faults"].get("429", 0)
    retry_lines = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retry_lines) == client.stats.retries
    assert all(r.levelno == logging.INFO for r in retry_lines)


def _text(content: str) -> dict[str, Any]:
    return {"rich_text": [{"type": "text", "text": {"content": content}}]}


async def test_an_outage_is_ridden_out(emulator: EmulatorServer, make_client: MakeClient) -> None:
    client = make_client(rate=FAST, burst=20, backoff_base=0.1, backoff_cap=0.5, max_attempts=30)
    configure(emulator, rate_limit=0, outage={"start": 0, "end": 2.5})
    started = time.monotonic()
    users = await asyncio.gather(*(client.me() for _ in range(5)))
    elapsed = time.monotonic() - started
    assert all(u["object"] == "user" for u in users)
    assert elapsed >= 2.0
    stats = emulator_stats(emulator)
    assert stats["outage_rejections"] > 0
    assert client.stats.errors == {"service_unavailable": stats["outage_rejections"]}


async def test_an_outage_longer_than_the_attempts_fails_with_a_retryable_error(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    client = make_client(rate=FAST, burst=20, max_attempts=3)
    configure(emulator, rate_limit=0, outage={"start": 0, "end": 60})
    with pytest.raises(NotionError) as caught:
        await client.me()
    error = caught.value
    assert (error.status, error.code, error.permanent) == (503, "service_unavailable", False)
    assert "try again later" in error.hint
    assert emulator_stats(emulator)["total"] == 3 == client.stats.total


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "internal_server_error"), (502, "bad_gateway"), (529, "service_overload")],
)
async def test_the_attempt_limit_is_respected(
    emulator: EmulatorServer, make_client: MakeClient, status: int, code: str
) -> None:
    client = make_client(rate=FAST, burst=20, max_attempts=4)
    configure(emulator, rate_limit=0, fault_rate=1.0, fault_statuses=[status], seed=3)
    with pytest.raises(NotionError) as caught:
        await client.me()
    assert (caught.value.status, caught.value.code) == (status, code)
    assert emulator_stats(emulator)["total"] == 4
    assert client.stats.retries == 3
    assert client.stats.rate_limited == (4 if status == 529 else 0)


async def test_a_comment_is_not_resent_after_a_server_error(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    """A 500 may come after the comment was stored: say so instead of risking a duplicate."""
    client = make_client(rate=FAST, burst=20)
    page = root_page(emulator)
    configure(emulator, rate_limit=0, fault_rate=1.0, fault_statuses=[500], seed=3)
    with pytest.raises(NotionError) as caught:
        await client.create_comment(page, [{"type": "text", "text": {"content": "hi"}}])
    assert caught.value.maybe_applied
    assert emulator_stats(emulator)["total"] == 1
    # A 429 is a refusal, not a maybe: the same comment is resent and lands once.
    configure(emulator, fault_statuses=[429], fault_rate=0.5, seed=5)
    made = await client.create_comment(page, [{"type": "text", "text": {"content": "hi"}}])
    configure(emulator, fault_rate=0.0)
    assert [c["id"] for c in await client.list_comments_all(page)] == [made["id"]]


# -- failures that retrying cannot fix ----------------------------------------------------


def _person_comment(emulator: EmulatorServer) -> str:
    answer = httpx.post(
        f"{emulator.base_url}/_emulator/comments",
        json={"page_id": root_page(emulator), "text": "a person's comment"},
    )
    answer.raise_for_status()
    comment_id: str = answer.json()["id"]
    return comment_id


FAILURES: dict[str, tuple[int, str, str]] = {
    "not found": (404, "object_not_found", "Connections"),
    "wrong token": (401, "unauthorized", "NOTION_TOKEN is wrong or revoked"),
    "bad request": (400, "validation_error", ""),
    "no capability": (403, "restricted_resource", "enable it in the integration settings"),
}


async def _provoke(kind: str, emulator: EmulatorServer, make_client: MakeClient) -> None:
    if kind == "not found":
        await make_client(rate=FAST).retrieve_page(str(uuid.uuid4()))
    elif kind == "wrong token":
        await make_client(rate=FAST, token="ntn_not_the_right_token").me()
    elif kind == "bad request":
        await make_client(rate=FAST).create_page(
            {"page_id": root_page(emulator)}, {"Nonsense": {"number": "seven"}}
        )
    else:
        comment = _person_comment(emulator)
        body = {"rich_text": [{"type": "text", "text": {"content": "edited by the bot"}}]}
        await make_client(rate=FAST).request("PATCH", f"comments/{comment}", body=body)


@pytest.mark.parametrize("kind", list(FAILURES))
async def test_permanent_failures_are_not_retried_and_say_what_to_do(
    emulator: EmulatorServer, make_client: MakeClient, kind: str
) -> None:
    status, code, hint = FAILURES[kind]
    configure(emulator, rate_limit=0)
    with pytest.raises(NotionError) as caught:
        await _provoke(kind, emulator, make_client)
    error = caught.value
    assert (error.status, error.code) == (status, code)
    assert error.permanent
    assert error.request_id
    if status == 400:
        assert error.hint == error.message and "Nonsense" in error.message
    else:
        assert hint in error.hint and hint in str(error)
    assert emulator_stats(emulator)["requests"].get(template_for(kind), 0) == 1
    copy = pickle.loads(pickle.dumps(error))  # crosses process and queue boundaries intact
    assert (copy.status, copy.code, copy.hint, str(copy)) == (status, code, error.hint, str(error))


def template_for(kind: str) -> str:
    return {
        "not found": "GET /v1/pages/{page_id}",
        "wrong token": "GET /v1/users/me",
        "bad request": "POST /v1/pages",
        "no capability": "PATCH /v1/comments/{comment_id}",
    }[kind]


async def test_an_unreachable_notion_is_a_connection_error(make_client: MakeClient) -> None:
    client = make_client(rate=FAST, base_url=f"http://127.0.0.1:{free_port()}", max_attempts=3)
    with pytest.raises(NotionError) as caught:
        await client.me()
    error = caught.value
    assert (error.status, error.code, error.permanent) == (None, "connection_error", False)
    assert "NOTION_BASE_URL" in error.hint
    assert client.stats.total == 3


async def test_a_bad_base_url_fails_at_once(make_client: MakeClient) -> None:
    client = make_client(rate=FAST, base_url="ftp://notion.example")
    with pytest.raises(NotionError) as caught:
        await client.me()
    assert (caught.value.code, caught.value.permanent, client.stats.total) == (
        "invalid_base_url",
        True,
        1,
    )


async def test_a_path_that_escapes_v1_is_refused_before_sending(make_client: MakeClient) -> None:
    client = make_client(rate=FAST)
    with pytest.raises(NotionError) as caught:
        await client.request("GET", "pages/../users")
    assert (caught.value.code, caught.value.permanent, client.stats.total) == (
        "invalid_request_url",
        True,
        0,
    )


async def test_a_timeout_is_retried_for_reads_only(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    client = make_client(rate=FAST, timeout=0.3, max_attempts=2)
    configure(emulator, rate_limit=0, timeout_rate=1.0, timeout_seconds=1.0, seed=1)
    with pytest.raises(NotionError) as caught:
        await client.me()
    assert (caught.value.status, caught.value.code, client.stats.total) == (None, "timeout", 2)
    with pytest.raises(NotionError) as caught:
        await client.append_blocks(root_page(emulator), [_paragraph("once")])
    assert caught.value.maybe_applied  # the emulator applies it after the delay, as Notion may
    assert client.stats.by_endpoint["PATCH /v1/blocks/{id}/children"] == 1


async def test_on_send_marks_each_attempt_as_it_goes_out_after_the_rate_limit_wait(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    """A write's send time is taken when it really leaves, not when it was queued."""
    client = make_client(rate=1.0, burst=1, max_attempts=3)
    configure(emulator, rate_limit=0, fault_rate=1.0, fault_statuses=[500], seed=1)
    sent: list[float] = []

    async def on_send() -> None:
        sent.append(time.monotonic())

    queued = time.monotonic()
    with pytest.raises(NotionError):
        await client.request("PATCH", f"pages/{root_page(emulator)}", body={}, on_send=on_send)
    # an idempotent write is retried on 500: three attempts, three stamps, each after
    # its token of a one-request-a-second bucket (the first one was free)
    assert len(sent) == client.stats.total == 3
    assert sent[2] - queued >= 1.5


async def test_a_delivery_goes_before_reply_checks_already_waiting(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    """Comment reads for replies are background requests: a write issued while eight of
    them wait for the rate limit is sent next, not after them. Which reads went out
    before the write shows in what they read: the write is a comment on the same page."""
    configure(emulator, rate_limit=0)
    client = make_client(rate=5.0, burst=1)
    page = root_page(emulator)
    reads = [asyncio.create_task(client.list_comments_all(page, background=True)) for _ in range(8)]
    await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
    gone = client.stats.background  # reads sent so far; the others wait for a token
    assert gone < 8

    await client.create_comment(page, [{"type": "text", "text": {"content": "the delivery"}}])
    seen = [len(found) for found in await asyncio.gather(*reads)]
    before = seen.count(0)
    # the reads already sent, and at most one taking its token as the write came
    assert before <= gone + 1, (gone, seen)
    assert seen.count(1) == 8 - before  # and every read still happened, once
    assert client.stats.background == 8 and client.stats.total == 9


# -- paths, pagination, endpoints ---------------------------------------------------------


async def test_paths_are_normalised_and_counted_by_template(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    client = make_client(rate=FAST)
    page = root_page(emulator)
    for path in ("users/me", "/users/me", "v1/users/me", "/v1/users/me"):
        assert (await client.request("GET", path))["object"] == "user"
    await client.request("get", f"/v1/pages/{page}")
    await client.retrieve_page(page.replace("-", ""))
    assert client.stats.by_endpoint == {"GET /v1/users/me": 4, "GET /v1/pages/{id}": 2}
    assert client.stats.for_object(page) == 2
    assert template("patch", f"/v1/blocks/{page}/children") == "PATCH /v1/blocks/{id}/children"
    assert client.stats.summary() == "6 requests, 0 retries, 0 rate limited"


def seed_rows_and_comments(emulator: EmulatorServer, data_source: str, page: str, n: int) -> None:
    """`n` rows in the data source and `n` comments on `page`, added by a person."""
    with httpx.Client(base_url=emulator.base_url) as person:
        for i in range(n):
            person.post(
                "/_emulator/pages",
                json={"parent": {"data_source_id": data_source}, "properties": title(f"r{i}")},
            ).raise_for_status()
            person.post(
                "/_emulator/comments", json={"page_id": page, "text": f"c{i}"}
            ).raise_for_status()


def _paragraph(text: str) -> dict[str, Any]:
    return {
        "object": "block",
        "type": "paragraph",
        "paragraph": {"rich_text": [{"type": "text", "text": {"content": text}}]},
    }


async def test_pagination_over_250_rows_blocks_and_comments(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    configure(emulator, rate_limit=0)
    client = make_client(rate=FAST, burst=50)
    data_source = await new_board(client, emulator)
    root = root_page(emulator)
    seed_rows_and_comments(emulator, data_source, root, 250)
    for start in range(0, 250, 100):  # at most 100 blocks per append
        chunk = range(start, min(start + 100, 250))
        await client.append_blocks(root, [_paragraph(f"b{n}") for n in chunk])

    before = client.stats.total
    rows = await client.query_all(data_source)
    assert client.stats.total - before == 3  # 100 + 100 + 50
    assert len({r["id"] for r in rows}) == 250

    small = [
        r async for r in client.paginate("POST", f"data_sources/{data_source}/query", page_size=7)
    ]
    assert [r["id"] for r in small] == [r["id"] for r in rows]
    assert client.stats.total - before == 3 + 36

    # One page at a time, for callers that stop early.
    first = await client.query_page(data_source, page_size=100)
    second = await client.query_page(data_source, start_cursor=first["next_cursor"])
    assert first["has_more"] and second["has_more"]
    assert [r["id"] for r in first["results"] + second["results"]] == [r["id"] for r in rows[:200]]

    blocks = await client.list_children_all(root)
    texts = [
        b["paragraph"]["rich_text"][0]["plain_text"] for b in blocks if b["type"] == "paragraph"
    ]
    assert texts == [f"b{n}" for n in range(250)]

    comments = await client.list_comments_all(root)
    assert [c["rich_text"][0]["plain_text"] for c in comments] == [f"c{n}" for n in range(250)]
    page_one = await client.list_comments_page(root, page_size=100)
    assert len(page_one["results"]) == 100 and page_one["has_more"]

    endpoints = client.stats.by_endpoint
    assert endpoints["GET /v1/blocks/{id}/children"] == 3
    assert endpoints["GET /v1/comments"] == 4


async def test_the_convenience_endpoints(emulator: EmulatorServer, make_client: MakeClient) -> None:
    configure(emulator, rate_limit=0)
    client = make_client(rate=FAST, burst=50)
    assert (await client.me())["type"] == "bot"
    root = root_page(emulator)
    made = await client.create_database(root, "Board", {"Name": {"title": {}}})
    database = await client.retrieve_database(made["id"])
    data_source = database["data_sources"][0]["id"]
    await client.update_data_source(
        data_source, properties={"Step": {"rich_text": {}}}, title="Tasks"
    )
    source = await client.retrieve_data_source(data_source)
    assert set(source["properties"]) == {"Name", "Step"}
    assert source["title"][0]["plain_text"] == "Tasks"

    page = await client.create_page(
        {"data_source_id": data_source}, title("card"), markdown="first line"
    )
    await client.update_page(page["id"], properties={"Step": _text("start")})
    await client.insert_markdown(page["id"], "second line")
    markdown = (await client.get_markdown(page["id"]))["markdown"]
    assert markdown.index("first line") < markdown.index("second line")
    await client.append_blocks(page["id"], [_paragraph("third")])
    comment = await client.create_comment(page["id"], [{"type": "text", "text": {"content": "hi"}}])
    assert [c["id"] for c in await client.list_comments_all(page["id"])] == [comment["id"]]
    rows = await client.query_all(
        data_source, filter={"property": "Step", "rich_text": {"equals": "start"}}
    )
    assert [r["id"] for r in rows] == [page["id"]]
    trashed = await client.update_page(page["id"], in_trash=True)
    assert trashed["in_trash"] is True
    assert await client.query_all(data_source) == []


# -- the token never shows ----------------------------------------------------------------

CANARY = "ntn_CANARY_9f8e7d6c5b4a_never_print_me"
WRONG_CANARY = "ntn_WRONGCANARY_1a2b3c4d5e6f_never_print_me"


@pytest.fixture(scope="module")
def canary_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CANARY, config=EmulatorConfig(rate_limit=0)) as server:
        yield server


async def test_the_token_never_appears_in_errors_or_logs(
    canary_server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu = canary_server
    reset(emu)
    root = root_page(emu)
    made: list[NotionClient] = []

    def client(**options: Any) -> NotionClient:
        settings: dict[str, Any] = {
            "rate": FAST,
            "burst": 50,
            "backoff_base": 0.01,
            "backoff_cap": 0.05,
            "max_attempts": 2,
            "timeout": 2.0,
            "bucket": TokenBucket(FAST, 50),
            **options,
        }
        made.append(
            NotionClient(
                settings.pop("token", CANARY), settings.pop("base", emu.base_url), **settings
            )
        )
        return made[-1]

    async def comment_edit() -> Any:
        comment = _person_comment(emu)
        return await client().request("PATCH", f"comments/{comment}", body={"rich_text": []})

    def faulty(status: int) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            configure(emu, fault_rate=1.0, fault_statuses=[status], seed=1)
            try:
                return await client().me()
            finally:
                configure(emu, fault_rate=0.0)

        return run

    async def timeout() -> Any:
        configure(emu, timeout_rate=1.0, timeout_seconds=0.6, seed=1)
        try:
            return await client(timeout=0.2).me()
        finally:
            configure(emu, timeout_rate=0.0)

    async def outage() -> Any:
        configure(emu, outage={"start": 0, "end": 30})
        try:
            return await client().me()
        finally:
            configure(emu, outage=None)

    provocations: dict[str, Callable[[], Awaitable[Any]]] = {
        "unauthorized": lambda: client(token=WRONG_CANARY).me(),
        "object_not_found": lambda: client().retrieve_page(str(uuid.uuid4())),
        "validation_error": lambda: client().create_page({"page_id": root}, {"X": {"number": "1"}}),
        "restricted_resource": comment_edit,
        "rate_limited": faulty(429),
        "internal_server_error": faulty(500),
        "bad_gateway": faulty(502),
        "service_unavailable": outage,
        "gateway_timeout": faulty(504),
        "service_overload": faulty(529),
        "timeout": timeout,
        "connection_error": lambda: client(base=f"http://127.0.0.1:{free_port()}").me(),
        "invalid_base_url": lambda: client(base="ftp://notion.example").me(),
        "invalid_request_url": lambda: client().request("GET", "pages/../users"),
    }
    texts: list[str] = []
    for expected, provoke in provocations.items():
        with pytest.raises(NotionError) as caught:
            await provoke()
        error = caught.value
        assert error.code == expected
        texts += [str(error), repr(error), error.hint, "".join(traceback.format_exception(error))]
        texts.append(repr(error.__reduce__()))
    for c in made:
        texts += [repr(c), repr(c.bucket), repr(c.stats), c.stats.summary()]
        await c.aclose()
    texts.append(caplog.text)
    texts += [str(record.args) for record in caplog.records]
    # Logs were on, down to the HTTP libraries' debug lines, which is where headers would show.
    assert any("retry" in record.getMessage() for record in caplog.records)
    assert {"httpx", "httpcore.http11"} <= {record.name for record in caplog.records}
    for text in texts:
        assert CANARY not in text
        assert WRONG_CANARY not in text
