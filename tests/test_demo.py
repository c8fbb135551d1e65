"""The demo is the README's first command: it must run and end with every card in place."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

NFACTORY = Path(sys.executable).with_name("nfactory")


def test_demo_runs_every_card_to_its_column(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(NFACTORY), "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())  # the terminal width decides where lines wrap
    assert "Every card ended where it should." in out, out
    assert "a person replies on 'Release notes for 2.4'" in out
    # the demo prints the columns it sees every quarter second: a card may pass Running
    # on its way from Feedback to Done, or not, as the machine's load decides
    assert re.search(r"Release notes for 2\.4 (Feedback|Running) → Done", out), out
    assert "Queue → Blocked" in out
    assert "0 rate limited" in out
    # the coding card: reviewed with "approve", committed on its own branch
    assert "a person replies on 'Add a greeting to the project': 'approve'" in out
    assert re.search(r"commit [0-9a-f]{12} on branch nfactory/add-a-greeting-to-the-project-", out)
    assert "GREETING.md | 1 +" in out
    assert "Traceback" not in done.stderr and "skipped" not in done.stderr
