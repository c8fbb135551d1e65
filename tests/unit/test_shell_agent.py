"""Command agents: real subprocesses, exit codes, timeouts that kill."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from factory import command_agent
from factory.interrupt import Partial, use_partial
from factory.results import AgentInput, parse_result
from factory.shell_agent import DEFAULT_CANCEL_GRACE_SECONDS, set_cancel_grace


def inp(**ctx: object) -> AgentInput:
    return AgentInput("t", "title", "prompt", "context", dict(ctx), "s", "r", "k", 1)


async def test_zero_exit_is_done_with_output_on_the_page(tmp_path: Path) -> None:
    agent = command_agent(
        [sys.executable, "-c", "import os; print('hello', os.getcwd(), os.environ['X'])"],
        cwd=tmp_path,
        env={"X": "42"},
    )
    result = parse_result(await agent(inp()), "s")
    assert result.status == "done" and result.data == {"exit_code": 0}
    assert f"hello {tmp_path} 42" in result.page and "exited with 0" in result.page


async def test_non_zero_exit_fails_with_the_stderr_tail() -> None:
    script = "import sys\nfor i in range(50): print(f'line {i}', file=sys.stderr)\nsys.exit(3)"
    result = parse_result(await command_agent([sys.executable, "-c", script])(inp()), "s")
    assert result.status == "failed" and result.data == {"exit_code": 3}
    assert "exited with 3" in result.message
    assert "line 49" in result.message and "line 29" not in result.message  # last 20 lines


async def test_argv_may_come_from_the_input() -> None:
    agent = command_agent(lambda i: [sys.executable, "-c", f"print({i.ctx['n']} * 2)"])
    assert "\n84\n" in parse_result(await agent(inp(n=42)), "s").page


async def test_timeout_kills_the_process_group_and_fails(tmp_path: Path) -> None:
    marker = tmp_path / "child-survived"
    # the child of the shell would write the marker after 2 s if it were not killed
    script = f"sleep 2 && touch {marker}"
    result = parse_result(await command_agent(["sh", "-c", script], timeout=0.3)(inp()), "s")
    assert result.status == "failed" and "timed out after 0.3 s" in result.message
    await asyncio.sleep(2.2)
    assert not marker.exists()


async def test_a_command_never_waits_on_the_workers_own_stdin() -> None:
    """Agents like `codex exec` read stdin when it is not a terminal: they must see EOF.

    The worker's stdin here is a pipe nobody writes to or closes, as under a
    supervisor; a command inheriting it would wait until its timeout.
    """
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    os.dup2(read_end, 0)
    try:
        agent = command_agent(["cat"], timeout=30)
        result = parse_result(await agent(inp()), "s")
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read_end, write_end):
            os.close(fd)
    assert result.status == "done", result.message


def streaming_script(gate: Path) -> str:
    # prints a line, then waits (up to 60 s) for the test to have seen it before going on
    return (
        "import sys, time, pathlib\n"
        "print('step 1: cloning', flush=True)\n"
        f"gate = pathlib.Path({str(gate)!r})\n"
        "for _ in range(600):\n"
        "    if gate.exists(): break\n"
        "    time.sleep(0.1)\n"
        "print('step 2: tests \\x1b[32mpassed\\x1b[0m', flush=True)\n"
        "sys.stdout.write('50%\\r100% done')\n"
    )


async def test_stdout_lines_reach_progress_while_the_command_runs(tmp_path: Path) -> None:
    gate = tmp_path / "seen"
    lines: list[str] = []

    def progress(text: str) -> None:
        lines.append(text)
        if "step 1" in text:
            gate.touch()  # the command goes on only once its first line arrived here

    agent = command_agent([sys.executable, "-c", streaming_script(gate)], timeout=60)
    result = parse_result(await agent(inp_with(progress)), "s")
    assert result.status == "done"
    assert lines[0] == "step 1: cloning"
    assert "step 2: tests" in lines[1] and lines[-1] == "100% done"
    # the full output is still on the page, as before
    assert "step 1: cloning" in result.page and "100% done" in result.page


async def test_progress_false_keeps_lines_off(tmp_path: Path) -> None:
    lines: list[str] = []
    script = "print('a'); print('b')"
    agent = command_agent([sys.executable, "-c", script], progress=False)
    result = parse_result(await agent(inp_with(lines.append)), "s")
    assert result.status == "done" and "\na\nb\n" in result.page
    assert lines == []


def inp_with(progress: Callable[[str], None]) -> AgentInput:
    return AgentInput("t", "title", "prompt", "context", {}, "s", "r", "k", 1, progress=progress)


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _written(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


async def _run_then_cancel(agent, started: Path) -> tuple[float, Partial]:  # type: ignore[no-untyped-def]
    """Start the agent as the engine would, cancel it once it has started; (seconds from the
    cancel until the agent returned, what it handed over as partial output)."""
    partial = Partial()

    async def call() -> object:
        use_partial(partial)
        return await agent(inp())

    task = asyncio.create_task(call())
    for _ in range(400):
        if _written(started):
            break
        await asyncio.sleep(0.05)
    task.cancel()
    at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.monotonic() - at, partial


async def test_a_cancelled_command_that_exits_on_sigterm_is_not_sigkilled(tmp_path: Path) -> None:
    pids, said = tmp_path / "pids", tmp_path / "said"
    # a shell and its child: both get SIGTERM (the whole group); the shell says goodbye
    script = (
        f"trap 'echo bye > {said}; exit 143' TERM; echo $$ > {pids}; echo working; "
        "while true; do sleep 0.1; done"
    )
    took, partial = await _run_then_cancel(command_agent(["sh", "-c", script]), pids)
    assert said.read_text() == "bye\n"  # SIGTERM reached it and its trap ran
    assert _gone(int(pids.read_text()))
    assert took < 5  # the grace is 10 s: it was not waited out
    assert "working" in partial.markdown and "(SIGTERM)" in partial.markdown


async def test_a_cancelled_command_that_ignores_sigterm_is_sigkilled_after_the_grace(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    # SIGTERM ignored by the shell and (inherited) by its children
    script = f"trap '' TERM; echo $$ > {pids}; echo stubborn; sleep 60 & wait; sleep 60"
    agent = command_agent(["sh", "-c", script], cancel_grace=1.5)
    took, partial = await _run_then_cancel(agent, pids)
    assert took >= 1.4  # it was given the grace
    assert took < 15
    assert _gone(int(pids.read_text()))
    assert "stubborn" in partial.markdown
    assert "SIGTERM, then SIGKILL after 1.5 s" in partial.markdown


async def test_the_cancel_grace_comes_from_the_setting(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"trap '' TERM; echo $$ > {pids}; sleep 60"
    set_cancel_grace(0.5)
    try:
        took, partial = await _run_then_cancel(command_agent(["sh", "-c", script]), pids)
    finally:
        set_cancel_grace(DEFAULT_CANCEL_GRACE_SECONDS)
    assert 0.4 <= took < 10
    assert "SIGKILL after 0.5 s" in partial.markdown
