"""Progress lines: the pure parts (what a line looks like, when it is due, spare budget)."""

from __future__ import annotations

import asyncio
import threading

from hypothesis import given
from hypothesis import strategies as st

from factory.progress import MAX_LINE_CHARS, Progress, is_due, progress_line
from integrations.notion.ratelimit import BucketState, take_spare


def test_a_progress_line_is_one_clean_line() -> None:
    assert progress_line("\x1b[32mok\x1b[0m  2 passed\n\tin 0.1s\r") == "ok 2 passed in 0.1s"
    assert progress_line("a\u202eb\x07c") == "abc"
    long = progress_line("x" * 1000)
    assert len(long) == MAX_LINE_CHARS and long.endswith("…")


@given(st.text())
def test_any_text_makes_at_most_one_short_line(text: str) -> None:
    line = progress_line(text)
    assert "\n" not in line and "\x1b" not in line and len(line) <= MAX_LINE_CHARS


@given(
    published_at=st.none() | st.floats(0, 100),
    now=st.floats(0, 200),
    interval=st.floats(0.5, 60),
    changed=st.booleans(),
)
def test_a_line_is_due_only_when_changed_and_its_interval_passed(
    published_at: float | None, now: float, interval: float, changed: bool
) -> None:
    due = is_due(2 if changed else 1, 1, published_at, now, interval)
    if due:
        assert changed and (published_at is None or now - published_at >= interval)


@given(tokens=st.floats(0, 3), elapsed=st.floats(0, 5), reserve=st.floats(0, 2))
def test_spare_budget_never_leaves_less_than_the_reserve(
    tokens: float, elapsed: float, reserve: float
) -> None:
    state, ok = take_spare(BucketState(tokens, 0.0), elapsed, 3.0, 3.0, reserve)
    if ok:
        assert state.tokens >= reserve - 1e-6


def test_nothing_is_spare_during_a_pause() -> None:
    _state, ok = take_spare(BucketState(3.0, 10.0), 5.0, 3.0, 3.0, 1.0)
    assert not ok


async def test_reports_from_threads_keep_the_latest_and_finish_waits_for_a_publish() -> None:
    progress = Progress()
    sink = progress.start("t", "r", "s", "title")
    threads = [threading.Thread(target=lambda i=i: sink(f"line {i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [update] = progress.due(15)
    assert update.line.startswith("line ") and update.version == 8
    order: list[str] = []
    async with progress.publishing(update) as sent:
        finishing = asyncio.create_task(progress.finish("t"))
        await asyncio.sleep(0.05)
        assert not finishing.done()  # the step is not committed under a publish
        order.append("published")
        sent()
    await finishing
    assert progress.latest() == {}
    sink("after the end")  # a thread still running reports to nothing
    assert progress.due(0) == []
