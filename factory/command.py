"""Agents that run a shell command: argv, cwd, env and a timeout, output to the card.

    from factory import command_agent
    test = command_agent(["pytest", "-q"], cwd="repo", timeout=600)
    "test": action(test, on={"done": "ship", "failed": "fix"})

A zero exit is `done` with the output on the page; a non-zero exit is
`failed` with the tail of stderr; a timeout kills the process (and its
children) and fails the attempt, so retries apply as to any agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from factory.results import AgentInput

Argv = Sequence[str] | Callable[[AgentInput], Sequence[str]]

# Process groups of commands running now: a worker that exits at once (a second
# signal) kills them, as their own sessions would otherwise outlive it and keep
# working a card another worker will take over.
_running: set[int] = set()

MAX_PAGE_CHARS = 50_000  # output kept on the card; longer output keeps its end
STDERR_TAIL_LINES = 20


def tail(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[-max_chars:]
    cut = cut[cut.find("\n") + 1 :] if "\n" in cut else cut
    return f"[... {len(text) - len(cut)} earlier characters omitted ...]\n{cut}"


def last_lines(text: str, n: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def render_output(argv: Sequence[str], code: int, stdout: str, stderr: str) -> str:
    shown = " ".join(argv)
    parts = [f"**`{shown}`** exited with {code}"]
    if stdout.strip():
        parts.append("```\n" + tail(stdout, MAX_PAGE_CHARS).rstrip("\n") + "\n```")
    if stderr.strip() and code != 0:
        parts.append("stderr:\n```\n" + tail(stderr, MAX_PAGE_CHARS // 5).rstrip("\n") + "\n```")
    return "\n\n".join(parts)


def command_agent(
    argv: Argv,
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Callable[[AgentInput], Any]:
    """An agent running `argv` (or `argv(input)`); `env` adds to the worker's environment."""

    async def run_command(inp: AgentInput) -> dict[str, Any]:
        args = list(argv(inp) if callable(argv) else argv)
        if not args or not all(isinstance(a, str) for a in args):
            raise ValueError(f"command argv must be a non-empty list of strings, got {args!r}")
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=str(cwd) if cwd is not None else None,
            env={**os.environ, **(env or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
        _running.add(proc.pid)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            await _kill_group(proc)
            message = f"{args[0]} timed out after {timeout:g} s and was killed"
            return {"status": "failed", "data": {"exit_code": None}, "message": message}
        except asyncio.CancelledError:  # the engine's own timeout, or shutdown
            await _kill_group(proc)
            raise
        finally:
            _running.discard(proc.pid)
        stdout = out.decode(errors="replace")
        stderr = err.decode(errors="replace")
        code = proc.returncode if proc.returncode is not None else -1
        page = render_output(args, code, stdout, stderr)
        data = {"exit_code": code}
        if code == 0:
            return {"status": "done", "data": data, "message": f"{args[0]} succeeded", "page": page}
        reason = last_lines(stderr, STDERR_TAIL_LINES) or last_lines(stdout, STDERR_TAIL_LINES)
        return {
            "status": "failed",
            "data": data,
            "message": f"{args[0]} exited with {code}: {reason or 'no output'}",
            "page": page,
        }

    run_command.__name__ = f"command_agent({argv!r})"
    return run_command


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


def kill_running_commands() -> None:
    """SIGKILL the process group of every command still running (the worker exits now)."""
    for pgid in list(_running):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
