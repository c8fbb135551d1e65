"""Agents that run a shell command: argv, cwd, env and a timeout, output to the card.

    from factory import command_agent
    test = command_agent(["pytest", "-q"], cwd="repo", timeout=600)
    "test": action(test, on={"done": "ship", "failed": "fix"})

A zero exit is `done` with the output on the page; a non-zero exit is
`failed` with the tail of stderr; a timeout kills the process (and its
children) and fails the attempt, so retries apply as to any agent. While it
runs, each line it prints on stdout is its progress on the card (the latest
one shows; `progress=False` keeps them off).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
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


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# A line that could close a fence: only backticks or tildes (3 or more), maybe indented.
_FENCE_LIKE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*$")
_ZERO_WIDTH_SPACE = "\u200b"
_C_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _ansi_c(arg: str) -> str:
    """bash's $'...' quoting: every control character as an escape, so one line."""
    out = []
    for ch in arg:
        if ch in "\\'":
            out.append("\\" + ch)
        elif _CONTROL.match(ch):
            code = ord(ch)
            out.append(_C_NAMED.get(ch) or (f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"))
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def shell_line(argv: Sequence[str]) -> str:
    """argv as one line of shell that reads back as the same argv.

    Arguments come from cards (titles, prompts), so they may hold newlines,
    backticks and escape sequences: quoting keeps each one a single word and
    the whole command a single line.
    """
    return " ".join(_ansi_c(a) if _CONTROL.search(a) else shlex.quote(a) for a in argv)


def fenced(text: str, language: str = "") -> str:
    """`text` in a fenced code block that nothing inside it can close.

    A line of only backticks or tildes would end the fence early and let the
    rest of the text out as page markdown; a zero-width space in front keeps
    it code (and invisible), whatever markdown reader Notion or we use.
    """
    lines = [
        _ZERO_WIDTH_SPACE + line if _FENCE_LIKE.match(line) else line for line in text.split("\n")
    ]
    return f"```{language}\n" + "\n".join(lines) + "\n```"


def render_output(argv: Sequence[str], code: int, stdout: str, stderr: str) -> str:
    parts = [f"Command exited with {code}:", fenced(shell_line(argv), "sh")]
    if stdout.strip():
        parts.append(fenced(tail(stdout, MAX_PAGE_CHARS).rstrip("\n")))
    if stderr.strip() and code != 0:
        parts.append("stderr:\n" + fenced(tail(stderr, MAX_PAGE_CHARS // 5).rstrip("\n")))
    return "\n\n".join(parts)


def command_agent(
    argv: Argv,
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> Callable[[AgentInput], Any]:
    """An agent running `argv` (or `argv(input)`); `env` adds to the worker's environment.

    It runs in `cwd` when given, else in the run's worktree (`inp.workspace`) for
    a factory with a workspace, else in the worker's own folder. With `progress`,
    each stdout line goes to `inp.progress` as it is printed.
    """

    async def run_command(inp: AgentInput) -> dict[str, Any]:
        args = list(argv(inp) if callable(argv) else argv)
        if not args or not all(isinstance(a, str) for a in args):
            raise ValueError(f"command argv must be a non-empty list of strings, got {args!r}")
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=_working_dir(cwd, inp),
            env={**os.environ, **(env or {})},
            # EOF at once: an agent reading stdin (`codex exec` does) must not wait on ours
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
        _running.add(proc.pid)
        try:
            out, err = await asyncio.wait_for(
                _communicate(proc, inp.progress if progress else None), timeout
            )
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


def _working_dir(cwd: str | Path | None, inp: AgentInput) -> str | None:
    """The given `cwd`, else the run's worktree (factories with a workspace), else ours."""
    if cwd is not None:
        return str(cwd)
    return str(inp.workspace) if inp.workspace is not None else None


# Read in pieces, not lines: a line longer than asyncio's stream limit would raise.
_READ_BYTES = 65_536
# A line still unfinished keeps only its end for progress (a progress bar redraws it).
_PARTIAL_KEEP = 4_096


async def _collect(
    stream: asyncio.StreamReader | None, line: Callable[[str], None] | None
) -> bytes:
    """Everything `stream` gives until EOF; each complete line also goes to `line`."""
    if stream is None:
        return b""
    chunks: list[bytes] = []
    partial = b""
    while chunk := await stream.read(_READ_BYTES):
        chunks.append(chunk)
        if line is None:
            continue
        *complete, partial = (partial + chunk).split(b"\n")
        for raw in complete:
            # carriage returns redraw a line in place: what shows is the last part
            line(raw.rsplit(b"\r", 1)[-1].decode(errors="replace"))
        partial = partial[-_PARTIAL_KEEP:]
    if line is not None and partial.strip():
        line(partial.rsplit(b"\r", 1)[-1].decode(errors="replace"))
    return b"".join(chunks)


async def _communicate(
    proc: asyncio.subprocess.Process, line: Callable[[str], None] | None
) -> tuple[bytes, bytes]:
    """proc.communicate(), with stdout's lines handed to `line` as they come."""
    out, err, _code = await asyncio.gather(
        _collect(proc.stdout, line), _collect(proc.stderr, None), proc.wait()
    )
    return out, err


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


def kill_running_commands() -> None:
    """SIGKILL the process group of every command still running (the worker exits now)."""
    for pgid in list(_running):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
