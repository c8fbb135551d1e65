"""The CLI on a Notion board (the emulator): one id for a card, the board's id, setup run
twice, doctor as JSON, and replying as the emulator's person."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import httpx

from integrations.notion_emulator.records import Database
from integrations.notion_emulator.richtext import plain_text
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.test_cli_notion import (
    WORKFLOWS,
    cli,
    column,
    emulator_env,
    emulator_root,
    notion_env,
)


def board_id_of(out: str) -> str:
    found = re.search(r"NOTION_BOARD_ID=([0-9a-f-]{36})", out)
    assert found is not None, out
    return found.group(1)


def databases_under(emulator: EmulatorServer, page: str) -> list[str]:
    ws = emulator.workspace
    with ws.lock:
        return [ws.title_of(n) for n in ws.live_children(page) if isinstance(n, Database)]


def test_setup_twice_under_a_page_finds_the_board_and_prints_the_id_others_show(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    root = emulator_root(emulator)
    env = emulator_env(emulator, tmp_path, WORKFLOWS)
    first = cli(tmp_path, env, "board", "setup", "--parent-page", root, "--title", "Work")
    assert first.returncode == 0, first.stderr
    assert "created board 'Work'" in first.stdout
    board = board_id_of(first.stdout)

    # again, the page named by its URL as copied from the browser
    link = f"https://www.notion.so/Home-{root.replace('-', '')}"
    second = cli(tmp_path, env, "board", "setup", "--parent-page", link, "--title", "Work")
    assert second.returncode == 0, second.stderr
    assert "found board 'Work' already under page" in second.stdout, second.stdout
    assert "no second board created" in second.stdout
    assert board_id_of(second.stdout) == board
    assert databases_under(emulator, root).count("Work") == 1

    env["NOTION_BOARD_ID"] = board
    checked = cli(tmp_path, env, "board", "setup")
    assert checked.returncode == 0 and board_id_of(checked.stdout) == board, checked.stdout
    doctor = cli(tmp_path, env, "doctor")
    assert re.search(rf"OK\s+board\s+Work \({board}, data source ", doctor.stdout), doctor.stdout
    ws = emulator.workspace
    with ws.lock:  # the database's id: the one in the board's Notion URL
        assert isinstance(ws.nodes[board], Database)

    # a different title is a different board; two of one title are refused, not guessed
    other = cli(tmp_path, env, "board", "setup", "--parent-page", root, "--title", "Other")
    assert other.returncode == 0 and "created board 'Other'" in other.stdout
    httpx.post(
        f"{emulator.base_url}/v1/databases",
        headers={"Authorization": f"Bearer {emulator.token}", "Notion-Version": "2025-09-03"},
        json={
            "parent": {"type": "page_id", "page_id": root},
            "title": [{"type": "text", "text": {"content": "Work"}}],
            "initial_data_source": {"properties": {"Name": {"title": {}}}},
        },
    ).raise_for_status()
    twice = cli(tmp_path, env, "board", "setup", "--parent-page", root, "--title", "Work")
    assert twice.returncode == 1 and twice.stdout == ""
    (line,) = twice.stderr.strip().splitlines()
    assert "2 boards titled 'Work' under page" in line and "NOTION_BOARD_ID" in line, line


def test_a_card_is_named_by_task_id_page_id_or_url_and_answered_as_the_person(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    env = notion_env(emulator, tmp_path, WORKFLOWS)
    args = ("task", "create", "--factory", "writing", "--title", "Release notes", "--body", "2.0")
    page = cli(tmp_path, env, *args).stdout.strip()
    hexid = page.replace("-", "")
    ran = cli(tmp_path, env, "run", "--task", f"https://www.notion.so/Release-notes-{hexid}")
    assert ran.returncode == 0, ran.stderr
    assert column(emulator, page) == "Feedback"

    (task,) = json.loads(cli(tmp_path, env, "status", "--json").stdout)["tasks"]
    assert task["page_id"] == page
    assert task["url"] == f"https://www.notion.so/Release-notes-{hexid}"
    peeked = f"https://www.notion.so/acme/{env['NOTION_BOARD_ID'].replace('-', '')}?v=1&p={hexid}"
    for ref in (task["id"], task["id"][:8], page, hexid, hexid.upper(), task["url"], peeked):
        shown = cli(tmp_path, env, "history", "--task", ref, "--json")
        assert shown.returncode == 0, (ref, shown.stderr)
        doc = json.loads(shown.stdout)
        assert (doc["task_id"], doc["page_id"], doc["url"]) == (task["id"], page, task["url"])

    text = cli(tmp_path, {**env, "COLUMNS": "80"}, "history", "--task", hexid).stdout
    assert text.splitlines()[0].split() == [task["id"][:8], "Release", "notes", task["url"]]
    one = cli(tmp_path, {**env, "COLUMNS": "200"}, "status", "--task", task["url"]).stdout
    assert task["id"][:8] in one and task["url"] in one and "Release notes" in one
    # too narrow for a url column: the links follow the table, each by its short id
    narrow = cli(tmp_path, {**env, "COLUMNS": "80"}, "status").stdout
    assert f"{task['id'][:8]}  {task['url']}" in narrow.splitlines(), narrow
    assert "Release notes" in narrow and "…" not in narrow

    # on the emulator, `task reply` comments as its person; the next tick resumes the card
    replied = cli(tmp_path, env, "task", "reply", "--task", task["url"], "--text", "approve")
    assert replied.returncode == 0, replied.stderr
    assert "as the emulator's person" in replied.stdout
    person = httpx.get(f"{emulator.base_url}/_emulator/root").json()["person_id"]
    last = emulator.workspace.comments_of(page)[-1]
    assert (plain_text(last.rich_text), last.created_by) == ("approve", person)
    assert cli(tmp_path, env, "tick").returncode == 0
    assert column(emulator, page) == "Done"
    comments = len(emulator.workspace.comments_of(page))
    late = cli(tmp_path, env, "task", "reply", "--task", page, "--text", "again")
    assert late.returncode == 1 and "not waiting for feedback" in late.stderr, late.stderr
    assert len(emulator.workspace.comments_of(page)) == comments  # nothing posted

    # on real Notion (anything not answering /_emulator/root) people reply in Notion
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    elsewhere = cli(
        tmp_path, {**env, "NOTION_BASE_URL": closed}, "task", "reply", "--task", page, "--text", "x"
    )
    assert elsewhere.returncode == 1
    (line,) = elsewhere.stderr.strip().splitlines()
    assert "replies are made in Notion's comments" in line and task["url"] in line, line

    # a local board's card in the same database is not answered through the Notion board
    local = {k: v for k, v in env.items() if k != "NOTION_BOARD_ID"}
    made = cli(tmp_path, local, "task", "create", "--factory", "writing", "--title", "Here")
    assert made.returncode == 0, made.stderr
    mine = cli(tmp_path, local, "status", "--json").stdout
    here = next(t["id"] for t in json.loads(mine)["tasks"] if t["title"] == "Here")
    crossed = cli(tmp_path, env, "task", "reply", "--task", here, "--text", "x")
    assert crossed.returncode == 1
    (line,) = crossed.stderr.strip().splitlines()
    assert "is a local board card, but NOTION_BOARD_ID is set" in line, line


def test_doctor_json_has_the_text_doctors_checks_and_no_secret(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    env = notion_env(emulator, tmp_path, WORKFLOWS)
    env["NFACTORY_CODER_REPO"] = str(WORKFLOWS.parent)  # code_change needs a git repository
    text = cli(tmp_path, env, "doctor")
    as_json = cli(tmp_path, env, "doctor", "--json")
    assert text.returncode == as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is True
    lines = [re.split(r"\s+", line.strip(), maxsplit=2) for line in text.stdout.splitlines()]
    assert [(c["name"], c["ok"], c["detail"]) for c in doc["checks"]] == [
        (name, mark == "OK", detail) for mark, name, detail in lines
    ]
    assert emulator.token not in as_json.stdout + as_json.stderr

    wrong = cli(tmp_path, {**env, "NOTION_TOKEN": "secret_wrong_0123456789"}, "doctor", "--json")
    assert wrong.returncode == 1
    doc = json.loads(wrong.stdout)
    assert doc["ok"] is False and {k: v for k, v in doc["checks"][-1].items() if k != "detail"} == {
        "name": "token",
        "ok": False,
    }
    assert "secret_wrong_0123456789" not in wrong.stdout + wrong.stderr
