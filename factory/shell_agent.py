"""Agents that run a shell command: argv, cwd, env and a timeout, output to the card.

    from factory import command_agent
    test = command_agent(["pytest", "-q"], cwd="repo", timeout=600)
    "test": action(test, on={"done": "ship", "failed": "fix"})

A zero exit is `done` with the output on the page; a non-zero exit is
`failed` with the tail of stderr; a timeout stops the process (and its
children) and fails the attempt, so retries apply as to any agent. While it
runs, each line it prints on stdout is its progress on the card (the latest
one shows; `progress=False` keeps them off).

Stopping a command (its timeout, the card cancelled, the worker stopping) sends
its process group SIGTERM, waits up to the cancel grace
(NFACTORY_CANCEL_GRACE_SECONDS, default 10) for the group to exit, then sends
SIGKILL. A cancelled command leaves the output it had written so far on the card.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from factory.interrupt import partial_output
from factory.results import AgentInput
from factory.terminal import CONTROL_CHARS

Argv = Sequence[str] | Callable[[AgentInput], Sequence[str]]

# Process groups of commands running now: a worker that exits at once (a second
# signal) kills them, as their own sessions would otherwise outlive it and keep
# working a card another worker will take over.
_running: set[int] = set()

# Seconds a stopped command's process group gets between SIGTERM and SIGKILL; the
# runtime sets it from NFACTORY_CANCEL_GRACE_SECONDS.
DEFAULT_CANCEL_GRACE_SECONDS = 10.0
_cancel_grace = DEFAULT_CANCEL_GRACE_SECONDS

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
        elif CONTROL_CHARS.match(ch):
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
    return " ".join(_ansi_c(a) if CONTROL_CHARS.search(a) else shlex.quote(a) for a in argv)


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


def set_cancel_grace(seconds: float) -> None:
    """The SIGTERM-to-SIGKILL grace of every command_agent not given its own."""
    global _cancel_grace
    if seconds < 0:
        raise ValueError(f"cancel grace must be 0 or more seconds, got {seconds!r}")
    _cancel_grace = seconds


def render_output(argv: Sequence[str], code: int, stdout: str, stderr: str) -> str:
    parts = [f"Command exited with {code}:", fenced(shell_line(argv), "sh")]
    if stdout.strip():
        parts.append(fenced(tail(stdout, MAX_PAGE_CHARS).rstrip("\n")))
    if stderr.strip() and code != 0:
        parts.append("stderr:\n" + fenced(tail(stderr, MAX_PAGE_CHARS // 5).rstrip("\n")))
    return "\n\n".join(parts)


def render_stopped(argv: Sequence[str], seconds: float, how: str, stdout: str, stderr: str) -> str:
    """The page of a command stopped before it exited: what it had written by then."""
    parts = [f"Command stopped after {seconds:.1f} s ({how}):", fenced(shell_line(argv), "sh")]
    if stdout.strip():
        parts.append("Output so far:\n" + fenced(tail(stdout, MAX_PAGE_CHARS).rstrip("\n")))
    if stderr.strip():
        parts.append("stderr so far:\n" + fenced(tail(stderr, MAX_PAGE_CHARS // 5).rstrip("\n")))
    if not stdout.strip() and not stderr.strip():
        parts.append("It had written no output.")
    return "\n\n".join(parts)


def command_agent(
    argv: Argv,
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    cancel_grace: float | None = None,
    progress: bool = True,
) -> Callable[[AgentInput], Any]:
    """An agent running `argv` (or `argv(input)`); `env` adds to the worker's environment.

    It runs in `cwd` when given, else in the run's worktree (`inp.workspace`) for
    a factory with a workspace, else in the worker's own folder. With `progress`,
    each stdout line goes to `inp.progress` as it is printed. `cancel_grace`:
    seconds between SIGTERM and SIGKILL when the command is stopped (default
    NFACTORY_CANCEL_GRACE_SECONDS).
    """

    async def run_command(inp: AgentInput) -> dict[str, Any]:
        args = list(argv(inp) if callable(argv) else argv)
        if not args or not all(isinstance(a, str) for a in args):
            raise ValueError(f"command argv must be a non-empty list of strings, got {args!r}")
        grace = _cancel_grace if cancel_grace is None else cancel_grace
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=_working_dir(cwd, inp),
            env={**os.environ, **(env or {})},
            # EOF at once: an agent reading stdin (`codex exec` does) must not wait on ours
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so stopping it stops its children
        )
        _running.add(proc.pid)
        # read as it comes (not communicate()), so a stopped command still has its output
        out, err = bytearray(), bytearray()
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.create_task(_read_into(proc.stdout, out, inp.progress if progress else None)),
            asyncio.create_task(_read_into(proc.stderr, err)),
        ]
        try:
            await asyncio.wait_for(_exited(proc, readers), timeout)
        except TimeoutError:
            how = await _stop_group(proc, grace)
            await _settle_readers(readers)
            message = f"{args[0]} timed out after {timeout:g} s and was stopped ({how})"
            page = render_stopped(args, time.monotonic() - started, how, _text(out), _text(err))
            return {
                "status": "failed",
                "data": {"exit_code": None},
                "message": message,
                "page": page,
            }
        except asyncio.CancelledError:  # the card cancelled, the engine's timeout, or shutdown
            how = await _stop_group(proc, grace)
            await _settle_readers(readers)
            elapsed = time.monotonic() - started
            partial_output(render_stopped(args, elapsed, how, _text(out), _text(err)))
            raise
        finally:
            _running.discard(proc.pid)
        stdout, stderr = _text(out), _text(err)
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


def _text(buffer: bytearray) -> str:
    return bytes(buffer).decode(errors="replace")


async def _read_into(
    stream: asyncio.StreamReader, buffer: bytearray, line: Callable[[str], None] | None = None
) -> None:
    """Everything `stream` gives until EOF into `buffer`; each complete line also to `line`."""
    partial = b""
    while chunk := await stream.read(_READ_BYTES):
        buffer.extend(chunk)
        if line is None:
            continue
        *complete, partial = (partial + chunk).split(b"\n")
        for raw in complete:
            # carriage returns redraw a line in place: what shows is the last part
            line(raw.rsplit(b"\r", 1)[-1].decode(errors="replace"))
        partial = partial[-_PARTIAL_KEEP:]
    if line is not None and partial.strip():
        line(partial.rsplit(b"\r", 1)[-1].decode(errors="replace"))


async def _exited(proc: asyncio.subprocess.Process, readers: list[asyncio.Task[None]]) -> None:
    """The command exited and its output is read to the end. Cancelled, it leaves the
    readers running (asyncio.wait, not gather): a stopped command's last words count."""
    await asyncio.wait(readers)
    for reader in readers:
        reader.result()
    await proc.wait()


async def _settle_readers(readers: list[asyncio.Task[None]]) -> None:
    """Let the readers take what is left in the pipes; a process that escaped the group
    could hold them open, so not for long."""
    _done, pending = await asyncio.wait(readers, timeout=1.0)
    for reader in pending:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal (setuid): it is there
        return True
    return True


def _group_done(proc: asyncio.subprocess.Process) -> bool:
    # the leader's zombie keeps its group alive until it is reaped (proc.returncode set)
    return proc.returncode is not None and not _group_alive(proc.pid)


async def _stop_group(proc: asyncio.subprocess.Process, grace: float) -> str:
    """SIGTERM the command's process group, SIGKILL it if anything of it is left after
    `grace` seconds; returns how it went, for the page. Shielded: a second cancellation
    (the worker stopping) must not leave the group half-stopped."""
    return await asyncio.shield(_stop_group_now(proc, grace))


async def _stop_group_now(proc: asyncio.subprocess.Process, grace: float) -> str:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if _group_done(proc):
            return "SIGTERM"
        await asyncio.sleep(0.05)
    if _group_done(proc):
        return "SIGTERM"
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()
    return f"SIGTERM, then SIGKILL after {grace:g} s"


def kill_running_commands(grace: float | None = None) -> None:
    """Stop the process group of every command still running (the worker exits now):
    SIGTERM, up to `grace` seconds (default: the cancel grace) for them to exit, SIGKILL."""
    grace = _cancel_grace if grace is None else grace
    groups = list(_running)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while groups and time.monotonic() < deadline:
        time.sleep(0.05)
        groups = [g for g in groups if _group_alive_or_zombie(g)]
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _group_alive_or_zombie(pgid: int) -> bool:
    """Whether the group has a live member. Outside the event loop nobody may reap the
    leader, so on Linux a group of zombies only counts as gone."""
    if not _group_alive(pgid):
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False
