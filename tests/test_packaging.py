"""Packaging: PostgreSQL is an extra, and using it without the extra says which to install."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from factory.store.db import DatabaseError, make_engine

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "url", ["postgresql://nobody@127.0.0.1:5432/x", "postgresql+psycopg://nobody@127.0.0.1/x"]
)
def test_a_postgresql_url_without_the_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    # None in sys.modules makes `import psycopg` fail as if it were not installed
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(DatabaseError) as caught:
        make_engine(url)
    message = str(caught.value)
    assert "\n" not in message
    assert "'psycopg' is not installed" in message
    assert "pip install 'notion-factory[postgres]'" in message


def test_psycopg_is_the_postgres_extra_and_the_dev_extra_keeps_it() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("psycopg")]
    extras = project["optional-dependencies"]
    assert [d for d in extras["postgres"] if d.startswith("psycopg")]
    assert [d for d in extras["dev"] if d.startswith("psycopg")]
    # PEP 639: an SPDX string and the file it names, not the deprecated table
    assert project["license"] == "MIT"
    assert all((REPO / f).is_file() for f in project["license-files"])
