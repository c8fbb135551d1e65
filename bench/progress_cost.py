"""Notion requests spent on progress lines for a 5-minute agent.

Run: `.venv/bin/python bench/progress_cost.py [--scale 20]`. The worker runs as in
`nfactory start` (its scheduler jobs, the real client, the emulator over HTTP) on one
card whose agent reports progress for five minutes. Time is scaled down by `--scale`
so that the run takes 300/scale seconds: every time setting is divided by it
(agent duration, NFACTORY_PROGRESS_SECONDS=15, poll interval 10 s, the agent's
reporting interval, the progress job's 1 s check) and every rate multiplied by
it (the client's 3 requests/s), so the counts are those of the unscaled run up
to scheduling jitter (which scaling magnifies). Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for tests.notion.world

from factory import AgentInput, action, define_factory, done, failed
from factory.worker import Worker, WorkerConfig, quiet_chatty_loggers
from integrations.notion.ratelimit import TokenBucket
from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig
from tests.notion.world import World

AGENT_SECONDS = 300.0
PROGRESS_SECONDS = 15.0
POLL_SECONDS = 10.0
RATE = 3.0
# seconds between the agent's lines, at full scale
SCENARIOS = [("a line every 0.5 s (chatty build log)", 0.5), ("a line every 5 s", 5.0),
             ("a line every 60 s", 60.0)]  # fmt: skip


def factory(every: float, scale: float, lines: list[int]) -> Any:
    async def agent(inp: AgentInput) -> dict[str, Any]:
        end = time.monotonic() + AGENT_SECONDS / scale
        n = 0
        while time.monotonic() < end:
            n += 1
            inp.progress(f"step {n}")
            await asyncio.sleep(every / scale)
        lines.append(n)
        return {"status": "done", "data": {"lines": n}, "page": f"{n} lines"}

    return define_factory(
        id="long",
        start="work",
        states={"work": action(agent, on={"done": "end", "failed": "x"}), "end": done(),
                "x": failed()},
    )  # fmt: skip


async def one(emu: EmulatorServer, tmp: Path, every: float, scale: float) -> dict[str, Any]:
    lines: list[int] = []
    made = {"long": factory(every, scale, lines)}
    world = await World(emu, str(tmp / f"bench-{every}.db"), made).open()
    assert world.board is not None
    world.client.bucket = TokenBucket(RATE * scale, 3)  # Notion's pace, scaled like the clock
    config = WorkerConfig(
        poll_seconds=POLL_SECONDS / scale,
        deliver_seconds=1.0 / scale,
        dispatch_seconds=1.0 / scale,
        progress_seconds=PROGRESS_SECONDS / scale,
        progress_check_seconds=1.0 / scale,
    )
    worker = Worker(world.engine, world.board, config)
    page = world.add_card("Five minutes", "long")
    worker.start()
    try:
        while world.column(page) != "Done" or "⏳" in world.markdown(page):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await worker.stop(grace=10)
        stats = world.client.stats
        return {
            "lines": sum(lines),
            "writes": stats.spare,
            "skipped": stats.skipped,
            "removed": world.board.progress.removed,
            "total": stats.total,
        }
    finally:
        await world.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=20.0, help="time compression (default 20)")
    args = parser.parse_args()
    quiet_chatty_loggers()
    bound = math.ceil(AGENT_SECONDS / PROGRESS_SECONDS) + 1
    print(
        f"one card, one agent running {AGENT_SECONDS:.0f} s, NFACTORY_PROGRESS_SECONDS="
        f"{PROGRESS_SECONDS:g}, time scaled down {args.scale:g}x (rates scaled up as much)"
    )
    print(
        f"bound: ceil({AGENT_SECONDS:.0f}/{PROGRESS_SECONDS:g}) + 1 = {bound} writes + 1 removal\n"
    )
    header = f"{'agent reports':<40} {'lines':>6} {'progress writes':>16} {'removal':>8} "
    header += f"{'on progress':>12} {'skipped (no spare)':>19} {'all requests':>13}"
    print(header)
    print("-" * len(header))
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmulatorServer("secret_bench", config=EmulatorConfig(rate_limit=0)) as emu,
    ):
        for name, every in SCENARIOS:
            r = asyncio.run(one(emu, Path(tmp), every, args.scale))
            spent = r["writes"] + r["removed"]
            print(
                f"{name:<40} {r['lines']:>6} {r['writes']:>16} {r['removed']:>8} {spent:>12} "
                f"{r['skipped']:>19} {r['total']:>13}"
            )


if __name__ == "__main__":
    main()
