"""Card and agent text never reaches a terminal or a log raw (issue 8, item 6).

A card title is anyone's text: an escape sequence in it must not retitle the
terminal or recolour it when someone runs `nfactory status`, and rich markup
in an error must show as text in the live view.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from factory.cli.live import render
from factory.clock import SystemClock
from factory.engine import Engine, EngineConfig
from factory.local_board import LocalBoard
from factory.store.db import open_database
from factory.terminal import SafeFormatter, visible
from factory.worker import Worker, WorkerConfig

NFACTORY = Path(sys.executable).with_name("nfactory")
# Sets the window title, then turns the text red: what a hostile title would do.
EVIL = "Fix\x1b]0;pwned\x07 login\x1b[31m [bold red]now[/bold red]\u202egnp.exe"
RAW = ("\x1b", "\x07", "\u202e")

ECHO_FACTORY = """
from factory import action, define_factory, done, failed


def echo(inp):
    return {"status": "failed", "message": "agent said: " + inp.title}


FACTORY = define_factory(
    id="echo",
    start="talk",
    states={
        "talk": action(echo, on={"done": "done", "failed": "failed"}),
        "done": done(),
        "failed": failed(),
    },
)
"""


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTION_", "NFACTORY_"))} | {
        "NFACTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "NFACTORY_WORKFLOWS": str(tmp_path / "flows"),
        "COLUMNS": "250",
    }
    return subprocess.run(
        [str(NFACTORY), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _assert_safe(output: str) -> None:
    for ch in RAW:
        assert ch not in output, f"raw {ch!r} reached the terminal: {output!r}"


def test_status_tick_and_history_show_hostile_titles_escaped(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "echo.py").write_text(ECHO_FACTORY)
    made = _cli(tmp_path, "task", "create", "--factory", "echo", "--title", EVIL)
    assert made.returncode == 0, made.stderr
    task_id = made.stdout.strip()

    ticked = _cli(tmp_path, "tick")
    status = _cli(tmp_path, "status")
    history = _cli(tmp_path, "history", "--task", task_id)
    for shown in (ticked, status, history):
        assert shown.returncode == 0, shown.stderr
        _assert_safe(shown.stdout + shown.stderr)
    # made visible, not dropped: a person can still see what the title holds
    assert "\\x1b]0;pwned\\x07" in status.stdout
    assert "[bold red]now[/bold red]" in status.stdout  # markup shown as text
    assert "\\x1b]0;pwned" in history.stdout


def test_the_live_view_shows_error_markup_as_text(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    engine = Engine(db, {}, EngineConfig(worker_id="w"), SystemClock())
    worker = Worker(engine, LocalBoard(db, SystemClock()), WorkerConfig())
    worker.stats.error(f"tick 1234abcd: agent raised: {EVIL}")
    console = Console(record=True, width=300, force_terminal=True, color_system="truecolor")
    console.print(render(worker))
    text = console.export_text(styles=False)
    assert "[bold red]now[/bold red]" in text
    assert "\\x1b]0;pwned\\x07" in text
    db.dispose()


def test_log_lines_cannot_be_forged_or_carry_escapes() -> None:
    formatter = SafeFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord(
        "nfactory", logging.WARNING, __file__, 1, "card %s: %s", ("abc", EVIL + "\nINFO ok"), None
    )
    line = formatter.format(record)
    assert "\n" not in line
    _assert_safe(line)
    assert "\\nINFO ok" in line


def test_visible_leaves_ordinary_text_alone() -> None:
    text = "Réparer la page d’accueil — 日本語 ✓ tabs?"  # noqa: RUF001
    assert visible(text) == text
    assert visible("a\tb\nc") == "a\\tb\\nc"
    assert visible("a\nb", keep_newlines=True) == "a\nb"
