"""`status` and `history` as a person reads them in an 80-column terminal, and cards
named by any of their ids: a real `nfactory` process on a local board."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import create_engine, update

from factory.store.tables import tasks
from tests import test_cli
from tests.test_cli import Cli, create, ok

cli = test_cli.cli  # the fixture: `nfactory` in a fresh folder with its own database

LONG_TITLE = "Release notes for the two-point-oh version, with every change listed"
QUESTION = "The draft is ready (see the page). Reply 'approve' to publish, or reply with changes."


def table_lines(out: str) -> list[str]:
    """The lines of a rendered table: the header line, then every line after the rule."""
    return [line for line in out.splitlines() if line.strip()]


def header(out: str) -> list[str]:
    """The header names, as printed (a header cut short by the terminal would show "…")."""
    return re.split(r"\s{2,}", table_lines(out)[0].strip())


def words_of(out: str) -> str:
    """The table's text with its wrapping undone: every cell's words in reading order."""
    return " ".join(out.split())


def test_status_at_80_columns_cuts_no_header_and_keeps_the_title_whole(cli: Cli) -> None:
    task_id = create(cli, "writing", LONG_TITLE, "Summarise the changes")
    ok(cli("run", "--task", task_id))
    out = ok(cli("status", COLUMNS="80"))
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "…" not in out, out
    names = header(out)
    assert names[:3] == ["task", "title", "state"], out
    assert {"last error", "updated"} <= set(names), out
    # the title wraps over lines in its column; none of its words is lost
    assert all(word in out for word in LONG_TITLE.split()), out
    assert task_id[:8] in out and "feedback" in out and "(approval)" in out
    assert "--wide shows all" in out and "factory" in out.splitlines()[-1], out

    wide = ok(cli("status", "--wide", COLUMNS="80"))
    assert header(wide) == [
        "task",
        "title",
        "state",
        "last error",
        "updated",
        "attempts",
        "column",
        "factory",
    ], wide
    assert LONG_TITLE in wide and "writing" in wide and "Feedback" in wide


def test_history_at_80_columns_keeps_every_note(cli: Cli) -> None:
    task_id = create(cli, "writing", LONG_TITLE, "Summarise the changes")
    ok(cli("run", "--task", task_id))
    out = ok(cli("history", "--task", task_id[:8], COLUMNS="80"))
    lines = out.splitlines()
    assert lines[0].startswith(task_id[:8]) and LONG_TITLE in lines[0], out
    body = "\n".join(lines[1:])
    assert all(len(line) <= 80 for line in lines[1:]), out
    assert "…" not in body, out
    assert {"#", "to", "event", "note"} <= set(header(body)), out
    assert QUESTION in words_of(body), out  # the feedback question, wrapped but whole
    assert "first draft" in body
    assert "reason" in ok(cli("history", "--task", task_id, "--wide", COLUMNS="80"))


def test_a_task_is_named_by_id_prefix_and_an_ambiguous_prefix_is_one_line(
    cli: Cli, tmp_path: Path
) -> None:
    first = create(cli, "triage", "One")
    second = create(cli, "triage", "Two")
    db = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with db.begin() as conn:  # two ids sharing the prefix `status` would show
        conn.execute(update(tasks).where(tasks.c.id == first).values(id="abcd1234" + first[8:]))
        conn.execute(update(tasks).where(tasks.c.id == second).values(id="abcd1234" + second[8:]))
    db.dispose()
    shared = cli("history", "--task", "abcd1234")
    assert shared.returncode == 1
    (line,) = shared.stderr.strip().splitlines()
    assert "ambiguous (2 tasks" in line and "give more of it" in line, line
    assert ok(cli("history", "--task", "abcd1234" + first[8:13])).startswith("abcd1234  One")

    unknown = cli("status", "--task", "ffff0000")
    assert unknown.returncode == 1
    (line,) = unknown.stderr.strip().splitlines()
    assert "no task with id 'ffff0000'" in line and "URL" in line, line


def test_version_and_shell_completion(cli: Cli) -> None:
    from importlib.metadata import version

    assert ok(cli("--version")).strip() == f"nfactory {version('notion-factory')}"
    assert "--install-completion" in ok(cli("--help"))
    # the shell named, not detected: under `make` the parent shell is sh, which typer refuses
    script = ok(cli("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1"))
    assert "_nfactory_completion" in script and "complete " in script, script
    # what the shell asks while a person types `nfactory sta<TAB>`
    asked = cli(_NFACTORY_COMPLETE="complete_bash", COMP_WORDS="nfactory sta", COMP_CWORD="1")
    assert asked.returncode == 0 and {"start", "status"} <= set(asked.stdout.split()), asked
