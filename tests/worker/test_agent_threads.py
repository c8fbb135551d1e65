"""Sync agents run in threads of their own: they never starve the worker's heartbeats and
database work, an agent that overruns its timeout keeps its concurrency slot (and no
more), and threads left running never keep a stopped worker alive.

Every agent appends `start`/`end` lines to a file, so the tests count runs and order
them without trusting the worker's own account.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from integrations.notion_emulator.server import EmulatorServer, free_port
from tests.worker.harness import Db, Stage, Worker, wait_for

# Cards titled "hang ..." sleep HANG_SECONDS, the others AGENT_SECONDS; AGENT_TIMEOUT
# (if set) is the state's timeout. No retries: a timed-out card fails.
SLEEPY_FACTORY = """
import os
import time

from factory import action, define_factory, done, failed


def note(what, inp):
    with open(os.environ["RUNS_FILE"], "a") as f:
        f.write(f"{time.time():.3f} {what} {inp.title}\\n")


def work(inp):
    note("start", inp)
    hang = inp.title.startswith("hang")
    time.sleep(float(os.environ["HANG_SECONDS" if hang else "AGENT_SECONDS"]))
    note("end", inp)
    return {"status": "done"}


TIMEOUT = os.environ.get("AGENT_TIMEOUT")

FACTORY = define_factory(
    id="sleepy",
    start="work",
    states={
        "work": action(
            work,
            on={"done": "done", "failed": "failed"},
            timeout=float(TIMEOUT) if TIMEOUT else None,
        ),
        "done": done(),
        "failed": failed(),
    },
)
"""


# A command agent that notes its pid (its process group's id) and sleeps a minute.
COMMAND_FACTORY = """
from factory import action, command_agent, define_factory, done, failed

FACTORY = define_factory(
    id="command",
    start="run",
    states={
        "run": action(
            command_agent(["sh", "-c", 'echo $$ >> "$PIDS_FILE"; exec sleep 60']),
            on={"done": "done", "failed": "failed"},
        ),
        "done": done(),
        "failed": failed(),
    },
)
"""


def sleepy_stage(emulator: EmulatorServer, tmp_path: Path, url: str, **env: str) -> Stage:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "sleepy.py").write_text(SLEEPY_FACTORY)
    (flows / "command.py").write_text(COMMAND_FACTORY)
    (tmp_path / "pids.txt").touch()
    runs = tmp_path / "runs.txt"
    runs.touch()
    env = {
        "RUNS_FILE": str(runs),
        "PIDS_FILE": str(tmp_path / "pids.txt"),
        "AGENT_SECONDS": "0",
        **env,
    }
    return Stage.create(emulator, tmp_path, url, workflows=flows, **env)


def agent_lines(stage: Stage) -> list[tuple[float, str, str]]:
    """(time, "start" or "end", card title) for every line an agent wrote."""
    found = []
    for line in (stage.cwd / "runs.txt").read_text().splitlines():
        at, what, title = line.split(" ", 2)
        found.append((float(at), what, title))
    return found


def command_pids(stage: Stage) -> list[int]:
    return [int(line) for line in (stage.cwd / "pids.txt").read_text().split()]


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie (killed; init may be slow to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


# -- item 7: agents never starve the leases ----------------------------------------------

CARDS = 16
AGENT_SECONDS = 5  # longer than the lease: only the heartbeat keeps the card
LEASE_SECONDS = 3


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_at_concurrency_8_keep_their_leases_while_long_sync_agents_run(
    emulator: EmulatorServer, tmp_path: Path, pg_db: Db
) -> None:
    """Sixteen 5 s sync agents on two workers of concurrency 8 with a 3 s lease: every
    heartbeat gets through, so no card is taken over and each agent runs exactly once."""
    stage = sleepy_stage(
        emulator,
        tmp_path,
        pg_db.url,
        NFACTORY_CONCURRENCY="8",
        NFACTORY_LEASE_SECONDS=str(LEASE_SECONDS),
        AGENT_SECONDS=str(AGENT_SECONDS),
    )
    pages = [stage.add_card(f"Card {i}", "sleepy") for i in range(CARDS)]
    a = Worker(stage, "worker-a")
    b = Worker(stage, "worker-b")
    try:
        wait_for(
            lambda: pg_db.statuses() == {"done": CARDS} and stage.all_terminal(pages),
            90,
            "both workers to finish all 16 cards",
            explain=lambda: (
                f"tasks {pg_db.statuses()}, agent runs {len(agent_lines(stage)) // 2}\n"
                f"--- a:\n{a.logs()[-3000:]}\n--- b:\n{b.logs()[-3000:]}"
            ),
        )
        (code_a, _), (code_b, _) = a.terminate(within=20), b.terminate(within=20)
    finally:
        a.kill()
        b.kill()
    assert (code_a, code_b) == (0, 0), a.logs() + b.logs()
    logs = a.logs() + b.logs()

    started = Counter(title for _, what, title in agent_lines(stage) if what == "start")
    twice = {title: n for title, n in started.items() if n != 1}
    assert len(started) == CARDS and not twice, f"agent runs per card: {twice}\n{logs}"
    # every claim bumps a card's fencing epoch: one tick each means one claim each
    claims = sum(int(t["lease_epoch"]) for t in pg_db.tasks())
    assert claims == CARDS, f"{claims} claims for {CARDS} cards\n{logs}"
    assert "took over task" not in logs and "was lost to another worker" not in logs, logs
    assert len(pg_db.runs()) == CARDS
    stage.close()


# -- item 11: a timed-out agent keeps its slot, not the worker's -------------------------


def test_agents_hanging_past_their_timeout_do_not_stall_other_cards_or_intake(
    emulator: EmulatorServer, tmp_path: Path, database: Db
) -> None:
    """Eight agents overrun a 1 s timeout and hang on; at concurrency 11 three slots are
    left: cards added afterwards are taken in, run and delivered promptly, and /metrics
    counts the eight calls overrunning."""
    port = free_port()
    stage = sleepy_stage(
        emulator,
        tmp_path,
        database.url,
        NFACTORY_CONCURRENCY="11",
        NFACTORY_SHUTDOWN_GRACE_SECONDS="1",
        HANG_SECONDS="60",
        AGENT_TIMEOUT="1",
    )
    hung = [stage.add_card(f"hang {i}", "sleepy") for i in range(8)]
    worker = Worker(stage, "solo", "--webhook-port", str(port))
    try:
        wait_for(
            lambda: all(stage.column(p) == "Failed" for p in hung),
            30,
            "the eight hanging agents to time out",
            explain=worker.logs,
        )
        assert metric(port, "nfactory_agent_calls_overrunning") == 8
        quick = [stage.add_card(f"quick {i}", "sleepy") for i in range(3)]
        took = wait_for(
            lambda: all(stage.column(p) == "Done" for p in quick),
            15,  # about a second here; they waited for the hanging threads (~60 s) before
            "three quick cards added after the hang to be done",
            explain=lambda: f"{agent_lines(stage)}\n{worker.logs()[-4000:]}",
        )
        print(f"quick cards done {took:.1f}s after they were added, with 8 agents hanging")
        assert metric(port, "nfactory_agent_calls_overrunning") == 8
        code, stop_took = worker.terminate(within=15)
    finally:
        worker.kill()
    print(f"exited {stop_took:.1f}s after SIGTERM with 8 agent threads hanging")
    assert code == 0, worker.logs()
    assert database.statuses() == {"failed": 8, "done": 3}
    assert "still running after its caller gave up" in worker.logs()
    stage.close()


def test_an_overrunning_agent_holds_its_concurrency_slot_until_its_thread_ends(
    emulator: EmulatorServer, tmp_path: Path, database: Db
) -> None:
    """At concurrency 2, two agents overrun a 1 s timeout and sleep on for 6 s: a card
    added meanwhile starts only once one of their threads has ended, never on top."""
    stage = sleepy_stage(
        emulator,
        tmp_path,
        database.url,
        NFACTORY_CONCURRENCY="2",
        HANG_SECONDS="6",
        AGENT_TIMEOUT="1",
    )
    hung = [stage.add_card(f"hang {i}", "sleepy") for i in range(2)]
    worker = Worker(stage, "solo")
    try:
        wait_for(
            lambda: all(stage.column(p) == "Failed" for p in hung),
            30,
            "the two hanging agents to time out",
            explain=worker.logs,
        )
        late = stage.add_card("quick late", "sleepy")
        wait_for(
            lambda: stage.column(late) == "Done",
            40,
            "the late card to be done",
            explain=lambda: f"{agent_lines(stage)}\n{worker.logs()[-4000:]}",
        )
        code, _ = worker.terminate(within=15)
    finally:
        worker.kill()
    assert code == 0, worker.logs()
    lines = agent_lines(stage)
    hang_ends = sorted(at for at, what, title in lines if what == "end" and title != "quick late")
    late_start = next(at for at, what, title in lines if title == "quick late")
    assert len(hang_ends) == 2, lines
    assert late_start >= hang_ends[0], f"the late card started on top of two overruns: {lines}"
    stage.close()


# -- item 11: shutdown with agent threads still running ----------------------------------


def test_sigterm_exits_within_the_grace_with_agents_hanging_past_their_timeout(
    emulator: EmulatorServer, tmp_path: Path, database: Db
) -> None:
    stage = sleepy_stage(
        emulator,
        tmp_path,
        database.url,
        NFACTORY_SHUTDOWN_GRACE_SECONDS="2",
        HANG_SECONDS="60",
        AGENT_TIMEOUT="1",
    )
    hung = [stage.add_card(f"hang {i}", "sleepy") for i in range(3)]
    worker = Worker(stage, "solo")
    try:
        wait_for(
            lambda: all(stage.column(p) == "Failed" for p in hung),
            30,
            "the hanging agents to time out",
            explain=worker.logs,
        )
        code, took = worker.terminate(within=2 + 10)
    finally:
        worker.kill()
    print(f"exited {took:.1f}s after SIGTERM with 3 agent threads hanging (grace 2s)")
    assert code == 0, worker.logs()
    assert "worker stopped" in worker.logs()
    assert database.leases_held() == 0
    stage.close()


def test_a_second_sigterm_stops_the_worker_at_once_and_kills_running_commands(
    emulator: EmulatorServer, tmp_path: Path, database: Db
) -> None:
    """The first SIGTERM waits (grace 60 s) for two sync agents and a command; the second
    ends the process at once, and the command with it (it runs in its own session, so it
    would outlive the worker); the cards are picked up later, when their leases expire."""
    stage = sleepy_stage(
        emulator,
        tmp_path,
        database.url,
        NFACTORY_SHUTDOWN_GRACE_SECONDS="60",
        HANG_SECONDS="60",
    )
    for i in range(2):
        stage.add_card(f"hang {i}", "sleepy")
    stage.add_card("a long command", "command")
    worker = Worker(stage, "solo")
    try:
        wait_for(
            lambda: database.leases_held() == 3 and len(command_pids(stage)) == 1,
            30,
            "two agents and a command running",
            explain=worker.logs,
        )
        worker.proc.send_signal(signal.SIGTERM)
        wait_for(
            lambda: "finishing running cards" in worker.logs(),
            10,
            "the first SIGTERM to be handled",
            explain=worker.logs,
        )
        assert worker.alive(), worker.logs()
        start = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        try:
            code = worker.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running 5s after a second SIGTERM:\n{worker.logs()}"
            ) from None
        took = time.monotonic() - start
    finally:
        worker.kill()
    print(f"exited {took:.2f}s after the second SIGTERM")
    assert code == 130, worker.logs()
    assert "stopping at once" in worker.logs()
    (pid,) = command_pids(stage)
    try:
        wait_for(lambda: process_gone(pid), 5, "the command to be killed with the worker")
    finally:
        if not process_gone(pid):
            os.killpg(pid, signal.SIGKILL)
    stage.close()
