"""The Notion token never shows, in any form, whatever shape it arrives in.

Each test runs the real `nfactory` process with the session's canary token and
then looks for the canary in everything the process printed and left on disk
(the SQLite database and its journal included).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.security.conftest import CANARY, HEAD, NFACTORY, TAIL, Cli, canary_leaks

# A secret read from a file ends in a newline; one pasted in a terminal may carry spaces.
PADDED = {
    "trailing newline": CANARY + "\n",
    "trailing spaces": CANARY + "   ",
    "surrounding whitespace": "\t " + CANARY + " \r\n",
}
# Shapes that stripping cannot fix: the token itself is broken.
BROKEN = {
    "non-ASCII": f"ntn_{HEAD}Ä{TAIL}",
    "control character": f"ntn_{HEAD}\x01{TAIL}",
    "inner newline": f"ntn_{HEAD}\n{TAIL}",
    "inner space": f"ntn_{HEAD} {TAIL}",
    "escape character": f"ntn_{HEAD}\x1b[31m{TAIL}",
}


def assert_no_leak(cli: Cli, *runs: subprocess.CompletedProcess[str]) -> None:
    for run in runs:
        assert not canary_leaks(run.stdout), run.stdout
        assert not canary_leaks(run.stderr), run.stderr
    for path, data in cli.written_files().items():
        assert not canary_leaks(data), f"the token is in {path}"


@pytest.mark.parametrize("shape", PADDED)
def test_a_padded_token_is_stripped_and_works_without_showing(cli: Cli, shape: str) -> None:
    token = PADDED[shape]
    cli.env["NOTION_TOKEN"] = token
    cli.setup_board()
    doctor = cli("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    page = cli.add_card("triage", "App crashes with an error")
    tick = cli("tick")
    assert tick.returncode == 0, tick.stderr
    assert cli.column(page) == "Done"
    status = cli("status", "--json")
    assert_no_leak(cli, doctor, tick, status)


@pytest.mark.parametrize("shape", BROKEN)
@pytest.mark.parametrize("command", [("doctor",), ("tick",), ("board", "setup")])
def test_a_broken_token_is_one_line_naming_notion_token_and_nothing_is_sent(
    cli: Cli, shape: str, command: tuple[str, ...]
) -> None:
    cli.env["NOTION_TOKEN"] = BROKEN[shape]
    cli.env["NOTION_BOARD_ID"] = "8c5e4ba2-2fb5-4a5e-9b2a-1d2f1b0c9e11"
    done = cli(*command)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: NOTION_TOKEN: "), done.stderr
    assert cli.requests() == {}  # refused before any request could carry it
    assert_no_leak(cli, done)


@pytest.mark.parametrize("shape", ["trailing newline", "non-ASCII"])
def test_start_never_logs_the_token(cli: Cli, shape: str) -> None:
    token = {**PADDED, **BROKEN}[shape]  # by name: the canary itself stays out of test ids
    cli.setup_board()
    env = cli.environ(NOTION_TOKEN=token, NFACTORY_POLL_SECONDS="1")
    worker = subprocess.Popen(
        [str(NFACTORY), "start", "--log-format", "json"],
        cwd=cli.folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = worker.stderr.readline()
        if not line:
            break  # the worker exited
        lines.append(line)
        if '"worker ' in line and " started: board " in line:
            break
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    out, rest = worker.communicate(timeout=90)
    log = "".join(lines) + rest
    if token.strip() == CANARY:
        assert " started: board " in log, log
        assert worker.returncode == 0, log
    else:
        assert worker.returncode == 1
        # --log-format json: the refusal is one JSON log line like every other line
        assert log.count("\n") == 1, log
        assert json.loads(log)["message"].startswith("NOTION_TOKEN: "), log
    assert not canary_leaks(out) and not canary_leaks(log), log
    for path, data in cli.written_files().items():
        assert not canary_leaks(data), f"the token is in {path}"
