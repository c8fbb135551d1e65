"""Every workspace test commits with a known identity, whatever the machine's git config."""

from __future__ import annotations

import pytest

from tests.workspaces.gitrepo import IDENTITY


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
