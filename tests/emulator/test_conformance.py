"""Conformance: the emulator answers every supported recorded exchange with Notion's shape."""

from __future__ import annotations

import httpx
import pytest

from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig

from .conformance import RECORDED, load, replay

pytestmark = pytest.mark.skipif(not RECORDED.exists(), reason=f"{RECORDED} not found")

TOKEN = "secret_conformance"


def test_recorded_exchanges_have_notion_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    records = load()
    # Over real HTTP, as the recorded traffic was.
    with (
        EmulatorServer(TOKEN, config=EmulatorConfig(rate_limit=0)) as emu,
        httpx.Client(base_url=emu.base_url) as client,
    ):
        outcome = replay(client, emu.workspace, TOKEN, records)
    skipped = sum(outcome.skipped.values())
    with capsys.disabled():
        print(
            f"\nconformance: {outcome.checked} recorded exchanges checked, "
            f"{len(outcome.mismatches)} mismatches, {skipped} skipped (unsupported endpoints)"
        )
        for endpoint, count in sorted(outcome.skipped.items()):
            print(f"  skipped {count:3d} x {endpoint}")
    assert outcome.checked + skipped == len(records)
    assert outcome.checked >= 250, "the conformance suite must cover the bulk of the recording"
    assert not outcome.mismatches, "shape mismatches:\n" + "\n".join(outcome.mismatches)
