"""Command agents: real subprocesses, exit codes, timeouts that kill."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

from factory import command_agent
from factory.results import AgentInput, parse_result


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
