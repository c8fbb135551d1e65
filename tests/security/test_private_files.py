"""What the worker writes to disk is readable by its owner only, and the declared
dependency ranges admit only versions the code works with (issue 8, item 9)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
NFACTORY = Path(sys.executable).with_name("nfactory")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _status(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NOTION_", "NFACTORY_"))}
    return subprocess.run(
        [str(NFACTORY), "status"],
        cwd=cwd,
        env=base | {"NFACTORY_WORKFLOWS": str(ROOT / "workflows")} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask: 0644 files unless we say
    )


def test_the_default_database_and_its_folder_are_private(tmp_path: Path) -> None:
    done = _status(tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / ".nfactory"
    assert _mode(folder) == 0o700
    files = list(folder.iterdir())
    assert folder / "nfactory.db" in files
    for f in files:  # the database and its -wal and -shm companions
        assert _mode(f) == 0o600, f"{f.name} is {oct(_mode(f))}"


def test_an_existing_folder_of_the_users_keeps_its_mode(tmp_path: Path) -> None:
    mine = tmp_path / "data"
    mine.mkdir(mode=0o755)
    os.chmod(mine, 0o755)
    done = _status(tmp_path, NFACTORY_DATABASE_URL=f"sqlite:///{mine / 'bot.db'}")
    assert done.returncode == 0, done.stderr
    assert _mode(mine) == 0o755
    assert _mode(mine / "bot.db") == 0o600


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return [Requirement(s) for s in specs]


def test_every_dependency_has_an_upper_bound() -> None:
    # 0.x releases break their API in minor versions; everything else in majors
    unbounded = [
        str(r)
        for r in _requirements()
        if not any(s.operator in ("<", "<=", "==", "~=") for s in r.specifier)
    ]
    assert unbounded == []


def test_the_lowest_pydantic_settings_allowed_has_what_the_code_imports() -> None:
    (req,) = [r for r in _requirements() if r.name == "pydantic-settings"]
    lowest = min(Version(s.version) for s in req.specifier if s.operator == ">=")
    assert lowest >= Version("2.7")  # NoDecode, imported by both settings modules
