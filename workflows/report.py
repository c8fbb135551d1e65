"""System report: run shell commands with timeouts and put their output on the card.

Shows `command_agent`: argv, a timeout that kills, output as page markdown,
and a non-zero exit that fails the state (here retried once, then Failed).
"""

from __future__ import annotations

import sys

from factory import Backoff, Retries, action, command_agent, define_factory, done, failed

PLATFORM = (
    "import platform, sys; print('python', sys.version.split()[0]); "
    "print('platform', platform.platform()); print('machine', platform.machine())"
)

FACTORY = define_factory(
    id="report",
    start="platform",
    states={
        "platform": action(
            command_agent([sys.executable, "-c", PLATFORM], timeout=30),
            on={"done": "disk", "failed": "failed"},
        ),
        "disk": action(
            command_agent(["df", "-h", "."], timeout=10),
            on={"done": "done", "failed": "failed"},
            retries=Retries(max=1, backoff=Backoff("fixed", ms=500, max_ms=500)),
        ),
        "done": done(),
        "failed": failed(),
    },
)
