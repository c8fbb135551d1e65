"""Packaging: PostgreSQL is an extra, and using it without the extra says which to install."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
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


@pytest.mark.slow
def test_the_wheel_ships_no_workflows_package_and_builds_without_deprecations(
    tmp_path: Path,
) -> None:
    """What `pip install notion-factory` puts in site-packages: no top-level `workflows`
    (it would hide a user's own `workflows/` folder), the license as PEP 639 metadata."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "Deprecat" not in build.stdout + build.stderr
    (wheel,) = tmp_path.glob("notion_factory-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        fields = archive.read(metadata).decode()
    assert {n.split("/")[0] for n in names if "/" in n} >= {"factory", "integrations"}
    assert not [n for n in names if n.startswith("workflows/")]
    assert "License-Expression: MIT" in fields.splitlines()
    assert [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert "Provides-Extra: postgres" in fields
    assert 'Requires-Dist: psycopg[binary]<4,>=3.1; extra == "postgres"' in fields
