"""Traffic shaping: token bucket properties, seeded faults, outages, config, latency."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from notion_client.errors import APIResponseError, UnknownHTTPResponseError, build_request_error
from starlette.responses import Response

from integrations.notion_emulator import faults
from integrations.notion_emulator.ratelimit import BucketState, full_bucket, take
from integrations.notion_emulator.traffic import ConfigError, EmulatorConfig, TrafficGate

PAGE = "/v1/pages/{page_id}"


class FakeClock:
    """Both the monotonic and the wall clock of a gate, moved by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_gate(
    config: EmulatorConfig | None = None,
) -> tuple[TrafficGate, FakeClock, RecordingSleep]:
    clock, sleep = FakeClock(), RecordingSleep()
    gate = TrafficGate(config, clock=clock, wall_clock=clock, sleep=sleep)
    return gate, clock, sleep


def body_of(response: Response) -> dict[str, object]:
    return json.loads(bytes(response.body))


def as_client_error(response: Response) -> Exception:
    """What notion-client raises for this response: the fidelity that matters."""
    raw = bytes(response.body)
    httpx_response = httpx.Response(
        response.status_code, headers=dict(response.headers), content=raw
    )
    return build_request_error(httpx_response, raw.decode())


# --- token bucket: pure core ------------------------------------------------

rates = st.floats(min_value=0.1, max_value=50, allow_nan=False, allow_infinity=False)
bursts = st.integers(min_value=1, max_value=20)
# Mostly short gaps (hammering, where the limit bites) with some idle pauses.
short_gap = st.integers(min_value=0, max_value=20).map(lambda k: k * 0.01)
gaps = st.lists(
    st.one_of(short_gap, short_gap, st.floats(min_value=0, max_value=3, allow_nan=False)),
    min_size=1,
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(rate=rates, burst=bursts, gaps=gaps)
def test_bucket_never_admits_more_than_burst_plus_rate_times_window(
    rate: float, burst: int, gaps: list[float]
) -> None:
    now = 0.0
    state = full_bucket(burst, now)
    admitted: list[float] = []
    for gap in gaps:
        now += gap
        decision = take(state, now, rate, burst)
        state = decision.state
        if decision.admitted:
            admitted.append(now)
    # Every window [admitted[i], admitted[j]] is as tight as a window holding
    # those admissions can be, so checking these pairs covers all windows.
    for i in range(len(admitted)):
        for j in range(i, len(admitted)):
            window = admitted[j] - admitted[i]
            assert j - i + 1 <= burst + rate * window + 1e-6


@settings(max_examples=100, deadline=None)
@given(rate=rates, burst=bursts, extra=st.lists(st.floats(0, 1), min_size=1, max_size=100))
def test_a_client_pacing_itself_at_the_rate_is_never_refused(
    rate: float, burst: int, extra: list[float]
) -> None:
    now = 0.0
    state = BucketState(tokens=0.0, updated_at=now)  # even starting from empty
    for slack in extra:
        now += 1 / rate + slack
        decision = take(state, now, rate, burst)
        assert decision.admitted
        state = decision.state


@settings(max_examples=200, deadline=None)
@given(rate=rates, burst=bursts, tokens=st.floats(min_value=0, max_value=0.999))
def test_retry_after_is_a_whole_second_count_that_is_enough_and_minimal(
    rate: float, burst: int, tokens: float
) -> None:
    state = BucketState(tokens=tokens, updated_at=10.0)
    refused = take(state, 10.0, rate, burst)
    if refused.admitted:  # within float slack of a full token
        return
    wait = refused.retry_after
    assert isinstance(wait, int) and wait >= 1
    assert take(refused.state, 10.0 + wait, rate, burst).admitted
    if wait > 1:
        # One second less (and a hair) must still be too early.
        assert not take(refused.state, 10.0 + wait - 1 - 1e-6, rate, burst).admitted


def test_rejected_requests_spend_nothing() -> None:
    state = BucketState(tokens=0.0, updated_at=0.0)
    for _ in range(50):
        decision = take(state, 0.5, 1.0, 5)
        assert not decision.admitted
        state = decision.state
    assert take(state, 1.0, 1.0, 5).admitted


def test_idle_bucket_refills_only_up_to_burst() -> None:
    state = BucketState(tokens=0.0, updated_at=0.0)
    admitted = 0
    for _ in range(10):
        decision = take(state, 1000.0, 3.0, 4)
        state = decision.state
        admitted += decision.admitted
    assert admitted == 4


def test_clock_stepping_backwards_adds_no_tokens() -> None:
    state = BucketState(tokens=0.0, updated_at=100.0)
    assert not take(state, 50.0, 1.0, 5).admitted


# --- the gate's limiter -----------------------------------------------------


async def test_gate_answers_429_with_notion_body_and_retry_after() -> None:
    gate, clock, _ = make_gate(EmulatorConfig(rate_limit=3.0, burst=3))
    for _ in range(3):
        assert await gate.admit("GET", PAGE, "tok") is None
    refused = await gate.admit("GET", PAGE, "tok")
    assert refused is not None and refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    body = body_of(refused)
    assert body.keys() == {"object", "status", "code", "message", "request_id"}
    assert (body["object"], body["status"], body["code"]) == ("error", 429, "rate_limited")
    uuid.UUID(str(body["request_id"]))
    error = as_client_error(refused)
    assert isinstance(error, APIResponseError) and error.code == "rate_limited"

    clock.advance(1.0)
    assert await gate.admit("GET", PAGE, "tok") is None
    stats = gate.stats()
    assert stats["rate_limited"] == 1 and stats["total"] == 5


async def test_retry_after_grows_with_a_slow_rate() -> None:
    gate, _, _ = make_gate(EmulatorConfig(rate_limit=0.25, burst=1))
    assert await gate.admit("POST", "/v1/pages", "tok") is None
    refused = await gate.admit("POST", "/v1/pages", "tok")
    assert refused is not None and refused.headers["retry-after"] == "4"


async def test_each_integration_token_has_its_own_bucket() -> None:
    gate, _, _ = make_gate(EmulatorConfig(rate_limit=1.0, burst=1))
    assert await gate.admit("GET", PAGE, "a") is None
    assert await gate.admit("GET", PAGE, "a") is not None
    assert await gate.admit("GET", PAGE, "b") is None


async def test_rate_limit_zero_or_null_turns_the_limiter_off() -> None:
    for off in (0, None):
        gate, _, _ = make_gate(EmulatorConfig(rate_limit=off, burst=1))
        results = [await gate.admit("GET", PAGE, "tok") for _ in range(100)]
        assert results == [None] * 100


async def test_lowering_burst_caps_a_full_bucket() -> None:
    gate, _, _ = make_gate(EmulatorConfig(rate_limit=1.0, burst=10))
    assert await gate.admit("GET", PAGE, "tok") is None
    gate.configure({"burst": 2})
    outcomes = [await gate.admit("GET", PAGE, "tok") is None for _ in range(4)]
    assert outcomes == [True, True, False, False]


# --- seeded faults ------------------------------------------------------------


async def fault_statuses(gate: TrafficGate, n: int) -> list[int | None]:
    statuses: list[int | None] = []
    for i in range(n):
        response = await gate.admit("GET" if i % 2 else "POST", PAGE, "tok")
        statuses.append(None if response is None else response.status_code)
    return statuses


async def test_same_seed_same_requests_same_faults() -> None:
    config = EmulatorConfig(rate_limit=None, fault_rate=0.4, seed=1234)
    first = await fault_statuses(make_gate(config)[0], 300)
    second = await fault_statuses(make_gate(config)[0], 300)
    assert first == second
    assert {s for s in first if s is not None} == {429, 500, 502, 503, 504}
    other = await fault_statuses(make_gate(config.model_copy(update={"seed": 99}))[0], 300)
    assert other != first


async def test_configuring_the_seed_restarts_the_fault_sequence() -> None:
    gate, _, _ = make_gate(EmulatorConfig(rate_limit=None))
    await fault_statuses(gate, 17)  # unrelated earlier traffic
    gate.configure({"fault_rate": 0.5, "seed": 7})
    first = await fault_statuses(gate, 100)
    gate.configure({"seed": 7})
    assert await fault_statuses(gate, 100) == first


async def test_faults_do_not_depend_on_rate_limiter_timing() -> None:
    """Request n meets the same fault whether or not earlier requests were limited."""
    unlimited, _, _ = make_gate(EmulatorConfig(rate_limit=None, fault_rate=0.3, seed=5))
    limited, _, _ = make_gate(EmulatorConfig(rate_limit=1.0, burst=1, fault_rate=0.3, seed=5))
    free = await fault_statuses(unlimited, 200)
    mixed = await fault_statuses(limited, 200)
    for a, b in zip(free, mixed, strict=True):
        if b != 429:
            assert a == b


def test_fault_rate_is_honoured_on_average() -> None:
    draws = [faults.draw(42, i, 0.3, [500, 503], 0.0) for i in range(5000)]
    rate = sum(d.status is not None for d in draws) / len(draws)
    assert 0.27 < rate < 0.33
    assert {d.status for d in draws} == {None, 500, 503}


def test_fault_draw_extremes() -> None:
    assert all(faults.draw(1, i, 0.0, [500], 0.0) == faults.NO_FAULT for i in range(500))
    assert all(faults.draw(1, i, 1.0, [503], 0.0).status == 503 for i in range(500))
    assert all(faults.draw(1, i, 1.0, [], 0.0).status is None for i in range(50))
    assert all(faults.draw(1, i, 0.0, [500], 1.0).delayed for i in range(50))


async def test_all_faults_503_are_service_unavailable_and_counted() -> None:
    gate, _, _ = make_gate(EmulatorConfig(fault_rate=1.0, fault_statuses=[503], rate_limit=None))
    for _ in range(5):
        response = await gate.admit("PATCH", PAGE, "tok")
        assert response is not None
        body = body_of(response)
        assert (body["status"], body["code"]) == (503, "service_unavailable")
    stats = gate.stats()
    assert stats["faults"] == {"503": 5} and stats["faults_total"] == 5
    assert stats["requests"] == {f"PATCH {PAGE}": 5}


@pytest.mark.parametrize(
    ("status", "expected_code", "known_to_sdk"),
    [
        (429, "rate_limited", True),
        (500, "internal_server_error", True),
        (503, "service_unavailable", True),
        (504, "gateway_timeout", True),
        (529, "service_overload", False),
    ],
)
def test_injected_error_bodies_match_notion(
    status: int, expected_code: str, known_to_sdk: bool
) -> None:
    response = faults.error_response(status)
    body = body_of(response)
    assert body["object"] == "error" and body["status"] == status
    assert body["code"] == expected_code and isinstance(body["message"], str)
    assert response.headers["content-type"].startswith("application/json")
    assert ("retry-after" in response.headers) == (status == 429)
    error = as_client_error(response)
    assert isinstance(error, APIResponseError) is known_to_sdk
    assert error.status == status  # type: ignore[attr-defined]


def test_502_is_the_edge_proxys_html_page() -> None:
    response = faults.error_response(502)
    assert response.headers["content-type"].startswith("text/html")
    assert b"502 Bad Gateway" in bytes(response.body)
    error = as_client_error(response)
    assert isinstance(error, UnknownHTTPResponseError) and error.status == 502


async def test_injected_429_also_carries_retry_after() -> None:
    gate, _, _ = make_gate(EmulatorConfig(fault_rate=1.0, fault_statuses=[429], rate_limit=None))
    response = await gate.admit("GET", PAGE, "tok")
    assert response is not None and response.headers["retry-after"] == "1"
    assert gate.stats()["rate_limited"] == 0  # the limiter's count stays honest


# --- outage window --------------------------------------------------------------


async def test_outage_window_relative_to_now() -> None:
    gate, clock, _ = make_gate(EmulatorConfig(rate_limit=None))
    gate.configure({"outage": {"start": 10, "end": 20}})
    clock.advance(5)
    assert await gate.admit("GET", PAGE, "tok") is None
    clock.advance(10)
    response = await gate.admit("GET", PAGE, "tok")
    assert response is not None and response.status_code == 503
    assert body_of(response)["code"] == "service_unavailable"
    clock.advance(10)
    assert await gate.admit("GET", PAGE, "tok") is None
    stats = gate.stats()
    assert stats["outage_rejections"] == 1 and stats["faults_total"] == 0


async def test_outage_with_absolute_instants_and_default_start() -> None:
    gate, clock, _ = make_gate(EmulatorConfig(rate_limit=None))
    now = datetime.fromtimestamp(clock.now, UTC)
    config = gate.configure({"outage": {"end": (now + timedelta(minutes=1)).isoformat()}})
    assert config.outage is not None and config.outage.start == now
    assert await gate.admit("GET", PAGE) is not None
    clock.advance(61)
    assert await gate.admit("GET", PAGE) is None
    gate.configure({"outage": {"start": "2000-01-01T00:00:00", "end": "2100-01-01T00:00:00Z"}})
    assert await gate.admit("GET", PAGE) is not None
    gate.configure({"outage": None})
    assert await gate.admit("GET", PAGE) is None


async def test_outage_wins_over_the_limiter_and_spends_no_tokens() -> None:
    gate, clock, _ = make_gate(EmulatorConfig(rate_limit=1.0, burst=1))
    gate.configure({"outage": {"end": 5}})
    for _ in range(10):
        response = await gate.admit("GET", PAGE, "tok")
        assert response is not None and response.status_code == 503
    clock.advance(6)
    assert await gate.admit("GET", PAGE, "tok") is None


def test_config_round_trips_with_an_absolute_outage() -> None:
    gate, clock, _ = make_gate()
    first = gate.configure({"outage": {"start": 0, "end": 30}})
    clock.advance(100)
    # Re-merging must not re-read the stored instants as "seconds from now".
    assert gate.configure({"latency_ms": 1}).outage == first.outage
    dumped = first.model_dump(mode="json")
    assert EmulatorConfig.model_validate(dumped) == first


# --- configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"rate_limit": -1}, "rate_limit"),
        ({"burst": 0}, "burst"),
        ({"fault_rate": 1.5}, "fault_rate"),
        ({"fault_statuses": [418]}, "fault_statuses"),
        ({"fault_statuses": "503"}, "fault_statuses"),
        ({"timeout_rate": -0.1}, "timeout_rate"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
        ({"latency_ms": "slow"}, "latency_ms"),
        ({"outage": {"start": 10, "end": 5}}, "outage"),
        ({"outage": {"start": 0}}, "outage.end"),
        ({"outage": {"end": "tomorrow"}}, "outage.end"),
        ({"seed": "abc"}, "seed"),
        ({"webhook_url": "ftp://example.com"}, "webhook_url"),
        ({"rate_limt": 3}, "rate_limt"),
    ],
)
def test_invalid_config_names_the_field_and_changes_nothing(
    patch: dict[str, object], field: str
) -> None:
    gate, _, _ = make_gate()
    before = gate.config
    with pytest.raises(ValueError, match=field) as caught:
        gate.configure(patch)
    assert isinstance(caught.value, ConfigError) and field in caught.value.fields
    assert gate.config == before


def test_non_object_patch_is_rejected() -> None:
    gate, _, _ = make_gate()
    with pytest.raises(ValueError, match="JSON object"):
        gate.configure([1, 2])  # type: ignore[arg-type]


def test_partial_updates_merge() -> None:
    gate, _, _ = make_gate()
    defaults = gate.config
    assert (defaults.rate_limit, defaults.burst, defaults.fault_rate) == (3.0, 10, 0.0)
    assert defaults.fault_statuses == (429, 500, 502, 503, 504)
    gate.configure({"fault_rate": 0.2, "fault_statuses": [504, 500, 500]})
    updated = gate.configure({"latency_ms": 40, "webhook_url": "http://127.0.0.1:9/hook"})
    assert updated.fault_rate == 0.2 and updated.fault_statuses == (500, 504)
    assert updated.latency_ms == 40 and updated.rate_limit == 3.0
    assert gate.config is updated


async def test_reset_restores_startup_config_buckets_and_counts() -> None:
    gate, _, _ = make_gate(EmulatorConfig(rate_limit=1.0, burst=1))
    gate.configure({"fault_rate": 1.0, "fault_statuses": [500]})
    await gate.admit("GET", PAGE, "tok")
    await gate.admit("GET", PAGE, "tok")
    gate.reset()
    assert gate.config == EmulatorConfig(rate_limit=1.0, burst=1)
    stats = gate.stats()
    assert (stats["total"], stats["requests"], stats["faults"]) == (0, {}, {})
    assert await gate.admit("GET", PAGE, "tok") is None


# --- latency and timeouts ------------------------------------------------------------


async def test_latency_is_added_to_every_answer() -> None:
    gate, _, sleep = make_gate(EmulatorConfig(rate_limit=1.0, burst=1, latency_ms=250))
    assert await gate.admit("GET", PAGE, "tok") is None
    assert await gate.admit("GET", PAGE, "tok") is not None  # a 429 is slow too
    assert sleep.calls == [0.25, 0.25]


async def test_latency_really_sleeps() -> None:
    gate = TrafficGate(EmulatorConfig(rate_limit=None, latency_ms=100))
    started = time.perf_counter()
    await asyncio.gather(*(gate.admit("GET", PAGE) for _ in range(8)))
    elapsed = time.perf_counter() - started
    assert 0.1 <= elapsed < 0.7  # side by side, not one after another (0.8 s)


async def test_timeouts_delay_then_let_the_request_through() -> None:
    gate, _, sleep = make_gate(
        EmulatorConfig(rate_limit=None, timeout_rate=1.0, timeout_seconds=75)
    )
    assert await gate.admit("POST", "/v1/comments", "tok") is None
    assert sleep.calls == [75]
    assert gate.stats()["delayed"] == 1


async def test_hold_rules_hold_exactly_the_matching_requests_then_let_them_through() -> None:
    card = "/v1/pages/0a1b/markdown"
    gate, _, sleep = make_gate(EmulatorConfig(rate_limit=None))
    gate.configure(
        {
            "holds": [
                {"method": "post", "path": "/v1/comments", "contains": "Card 3", "seconds": 4},
                {"path": "/v1/pages/{page_id}/markdown", "contains": "0a1b", "seconds": 2.5},
            ]
        }
    )
    comments = "/v1/comments"
    assert await gate.admit("POST", comments, "tok", f"{comments} {{'text': 'Card 2'}}") is None
    assert sleep.calls == []  # another card's comment goes straight through
    assert await gate.admit("POST", comments, "tok", f"{comments} {{'text': 'Card 3'}}") is None
    assert await gate.admit("POST", comments, "tok", f"{comments} {{'text': 'Card 3'}}") is None
    assert sleep.calls == [4]  # times=1 by default: only the first match is held
    template = "/v1/pages/{page_id}/markdown"
    assert await gate.admit("GET", template, "tok", card) is None
    assert await gate.admit("PATCH", template, "tok", f"{card} {{}}") is None
    assert sleep.calls == [4, 2.5]  # the GET matched too (no method given): held once, once
    assert gate.stats()["delayed"] == 2


async def test_stats_show_how_many_requests_are_being_held_right_now() -> None:
    gate = TrafficGate(EmulatorConfig(rate_limit=None))
    gate.configure({"holds": [{"path": PAGE, "seconds": 0.3, "times": 2}]})
    held = [asyncio.create_task(gate.admit("GET", PAGE)) for _ in range(2)]
    await asyncio.sleep(0.1)
    assert gate.stats()["holding"] == 2
    assert await asyncio.gather(*held) == [None, None]
    assert gate.stats()["holding"] == 0


async def test_configuring_holds_restarts_their_counts_and_times_null_holds_all() -> None:
    gate, _, sleep = make_gate(EmulatorConfig(rate_limit=None))
    gate.configure({"holds": [{"path": PAGE, "seconds": 1}]})
    for _ in range(2):
        await gate.admit("GET", PAGE, "tok")
    gate.configure({"holds": [{"path": PAGE, "seconds": 1}]})
    await gate.admit("GET", PAGE, "tok")
    gate.configure({"holds": [{"path": PAGE, "seconds": 2, "times": None}]})
    for _ in range(3):
        await gate.admit("GET", PAGE, "tok")
    assert sleep.calls == [1, 1, 2, 2, 2]


def test_a_bad_hold_rule_is_refused_naming_the_field() -> None:
    gate, _, _ = make_gate(EmulatorConfig(rate_limit=None))
    with pytest.raises(ConfigError) as refused:
        gate.configure({"holds": [{"path": PAGE, "seconds": -1}]})
    assert "holds.0.seconds" in str(refused.value)
    assert gate.config.holds == ()


async def test_no_sleep_without_latency_or_timeouts() -> None:
    gate, _, sleep = make_gate(EmulatorConfig(rate_limit=None))
    await fault_statuses(gate, 20)
    assert sleep.calls == []


# --- stats and threads -----------------------------------------------------------------


async def test_stats_count_requests_by_method_and_template() -> None:
    gate, _, _ = make_gate(EmulatorConfig(rate_limit=None))
    await gate.admit("get", PAGE)
    await gate.admit("GET", PAGE)
    await gate.admit("POST", "/v1/data_sources/{data_source_id}/query")
    stats = gate.stats()
    assert stats["requests"] == {
        f"GET {PAGE}": 2,
        "POST /v1/data_sources/{data_source_id}/query": 1,
    }
    assert stats["total"] == 3
    json.dumps(stats)  # the stats endpoint can serve it as is


def test_gate_is_safe_to_share_between_threads() -> None:
    gate = TrafficGate(EmulatorConfig(rate_limit=None, fault_rate=0.5, seed=3))
    outcomes: list[int | None] = []
    lock = threading.Lock()

    def worker() -> None:
        async def run() -> list[int | None]:
            return [
                None if (r := await gate.admit("GET", PAGE, "tok")) is None else r.status_code
                for _ in range(200)
            ]

        result = asyncio.run(run())
        with lock:
            outcomes.extend(result)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = gate.stats()
    assert stats["total"] == len(outcomes) == 1600
    # Each request index was drawn exactly once, whatever the interleaving, so
    # the multiset of faults is exactly the seeded sequence's.
    expected = [faults.draw(3, i, 0.5, (429, 500, 502, 503, 504), 0).status for i in range(1600)]
    assert sorted(o or 0 for o in outcomes) == sorted(e or 0 for e in expected)
    assert stats["faults_total"] == sum(o is not None for o in outcomes)
