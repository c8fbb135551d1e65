"""Who may answer a card's question, through the real CLI on the emulator.

A card of the bundled `writing` factory waits in Feedback for an approval; a
tick after a reply that counts takes it to Done.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

from tests.security.conftest import NFACTORY, Cli


def waiting_card(cli: Cli) -> str:
    page = cli.add_card("writing", "Release notes")
    cli.ok("tick")
    assert cli.column(page) == "Feedback"
    return page


def test_an_allow_list_that_resolves_to_nobody_lets_nobody_answer(cli: Cli) -> None:
    cli.env["NFACTORY_ALLOWED_REPLIERS"] = "boss@example.com"
    cli.setup_board()
    page = waiting_card(cli)
    mallory = cli.add_user(name="Mallory", email="mallory@example.com")
    cli.comment(page, "approve", mallory["id"])
    cli.comment(page, "approve")  # the workspace's own person is not on the list either
    ticked = cli("tick")
    assert ticked.returncode == 0, ticked.stderr
    assert cli.column(page) == "Feedback"
    assert "'boss@example.com' matches no person in the workspace" in ticked.stderr
    assert "nobody can answer questions" in ticked.stderr


def test_ids_match_with_or_without_dashes_and_emails_in_any_case(cli: Cli) -> None:
    person = cli.person_id()
    cli.env["NFACTORY_ALLOWED_REPLIERS"] = person.replace("-", "").upper()
    cli.setup_board()
    page = waiting_card(cli)
    cli.comment(page, "approve")
    cli.ok("tick")
    assert cli.column(page) == "Done"

    cli.env["NFACTORY_ALLOWED_REPLIERS"] = "PERSON@Emulator.Invalid"  # the person's email
    page = waiting_card(cli)
    cli.comment(page, "approve")
    cli.ok("tick")
    assert cli.column(page) == "Done"


def test_another_integrations_bot_is_not_a_person(cli: Cli) -> None:
    # `run --task` reads the card's comments every time; back-to-back ticks would follow
    # the reply schedule and not look again within seconds (tests/notion/test_reply_checks)
    cli.setup_board()
    page = waiting_card(cli)
    other = cli.add_user(type="bot", name="Some other integration")
    cli.comment(page, "approve", other["id"])
    cli.ok("run", "--task", page)
    assert cli.column(page) == "Feedback"

    # even when it is allow-listed by id
    cli.env["NFACTORY_ALLOWED_REPLIERS"] = other["id"]
    cli.ok("run", "--task", page)
    assert cli.column(page) == "Feedback"

    del cli.env["NFACTORY_ALLOWED_REPLIERS"]
    cli.comment(page, "approve")
    cli.ok("run", "--task", page)
    assert cli.column(page) == "Done"


def test_an_entry_that_is_neither_id_nor_email_is_a_settings_error(cli: Cli) -> None:
    cli.setup_board()
    done = cli("tick", NFACTORY_ALLOWED_REPLIERS="boss@example.com, the boss")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "NFACTORY_ALLOWED_REPLIERS" in done.stderr and "'the boss'" in done.stderr


def test_doctor_has_a_fix_line_per_entry_that_names_no_person(cli: Cli) -> None:
    cli.setup_board()
    bot = cli.add_user(type="bot", name="Some other integration")
    person = cli.person_id()
    listed = f"boss@example.com, {bot['id']}, {person.replace('-', '')}"
    doctor = cli("doctor", NFACTORY_ALLOWED_REPLIERS=listed)
    assert doctor.returncode == 1, doctor.stdout
    fixes = [line for line in doctor.stdout.splitlines() if line.startswith("FIX")]
    assert len(fixes) == 2, doctor.stdout
    assert re.search(r"FIX\s+repliers\s+.*'boss@example.com' matches no person", doctor.stdout)
    assert re.search(rf"FIX\s+repliers\s+.*'{bot['id']}' matches no person", doctor.stdout)
    assert "nobody can answer" not in doctor.stdout  # the person's id resolved

    nobody = cli("doctor", NFACTORY_ALLOWED_REPLIERS=f"boss@example.com,{bot['id']}")
    assert nobody.returncode == 1
    assert re.search(r"FIX\s+repliers\s+.*no entry resolves: nobody can answer", nobody.stdout)

    fine = cli("doctor", NFACTORY_ALLOWED_REPLIERS=person)
    assert fine.returncode == 0, fine.stdout
    assert re.search(r"OK\s+repliers\s+1 allowed person can answer", fine.stdout)


def test_without_user_access_no_comment_counts_and_doctor_says_why(cli: Cli) -> None:
    cli.setup_board()
    page = waiting_card(cli)
    cli.configure(user_information=False)
    cli.comment(page, "approve")
    ticked = cli("tick")
    assert ticked.returncode == 0, ticked.stderr
    assert cli.column(page) == "Feedback"
    assert "cannot read users" in ticked.stderr
    doctor = cli("doctor")
    assert doctor.returncode == 1
    assert re.search(r"FIX\s+repliers\s+the integration cannot read users", doctor.stdout)


def test_start_warns_about_each_unresolved_entry_and_keeps_running(cli: Cli) -> None:
    cli.setup_board()
    env = cli.environ(
        NFACTORY_ALLOWED_REPLIERS="boss@example.com,0123456789abcdef0123456789abcdef",
        NFACTORY_POLL_SECONDS="1",
    )
    worker = subprocess.Popen(
        [str(NFACTORY), "start"],
        cwd=cli.folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert worker.stderr is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = worker.stderr.readline()
            if not line:
                break
            lines.append(line)
            if " started: board " in line:
                break
        assert any(" started: board " in line for line in lines), "".join(lines)
        assert worker.poll() is None  # still running
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=90)
    log = "".join(lines)
    assert re.search(r"WARNING .*'boss@example.com' matches no person", log), log
    assert re.search(r"WARNING .*'01234567-89ab-cdef-0123-456789abcdef' matches no person", log), (
        log
    )
    assert re.search(r"WARNING .*nobody can answer questions", log), log
    assert worker.returncode == 0
