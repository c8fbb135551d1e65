"""factory.settings: defaults, the environment, `.env` in the working folder, clear errors."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from factory.settings import Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No NFACTORY_ variables from the outer environment, and a working folder with no .env."""
    for name in list(os.environ):
        if name.upper().startswith("NFACTORY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///.nfactory/nfactory.db"
    assert s.workflows == ["workflows"]
    assert s.lease_seconds == 30
    assert s.max_transitions_per_tick == 25
    assert s.max_inline_backoff_seconds == 10
    assert s.summary_comment == "problems"


def test_default_worker_id_is_host_pid_random() -> None:
    first, second = load_settings().worker_id, load_settings().worker_id
    host = re.escape(socket.gethostname())
    assert re.fullmatch(rf"{host}-{os.getpid()}-[0-9a-f]{{6}}", first), first
    assert first != second, "two workers in one process must not share an id"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NFACTORY_DATABASE_URL", "postgresql://bot@db.internal:5432/factory")
    monkeypatch.setenv("NFACTORY_WORKFLOWS", "workflows, /srv/flows/extra.py ,more")
    monkeypatch.setenv("NFACTORY_LEASE_SECONDS", "90")
    monkeypatch.setenv("NFACTORY_MAX_TRANSITIONS_PER_TICK", "5")
    monkeypatch.setenv("NFACTORY_WORKER_ID", "worker-7")
    monkeypatch.setenv("NFACTORY_MAX_INLINE_BACKOFF_SECONDS", "0")
    s = load_settings()
    assert s.database_url == "postgresql://bot@db.internal:5432/factory"
    assert s.workflows == ["workflows", "/srv/flows/extra.py", "more"]
    assert (s.lease_seconds, s.max_transitions_per_tick) == (90, 5)
    assert (s.worker_id, s.max_inline_backoff_seconds) == ("worker-7", 0)


def test_workflow_paths_may_be_separated_like_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NFACTORY_WORKFLOWS", os.pathsep.join(["a", "b/c.py"]))
    assert load_settings().workflows == ["a", "b/c.py"]


def test_dot_env_in_the_working_folder_is_read(clean: Path) -> None:
    (clean / ".env").write_text(
        "# a comment\n"
        "NFACTORY_DATABASE_URL=sqlite:///from-dotenv.db\n"
        "NFACTORY_LEASE_SECONDS=12\n"
        "NFACTORY_WORKER_ID=dotenv-worker\n"
        "SOMETHING_ELSE=ignored\n"
    )
    s = load_settings()
    assert (s.database_url, s.lease_seconds, s.worker_id) == (
        "sqlite:///from-dotenv.db",
        12,
        "dotenv-worker",
    )


def test_the_environment_wins_over_dot_env(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean / ".env").write_text("NFACTORY_LEASE_SECONDS=12\nNFACTORY_WORKER_ID=from-file\n")
    monkeypatch.setenv("NFACTORY_LEASE_SECONDS", "45")
    s = load_settings()
    assert (s.lease_seconds, s.worker_id) == (45, "from-file")


def test_a_dot_env_elsewhere_is_not_read(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean / ".env").write_text("NFACTORY_LEASE_SECONDS=12\n")
    elsewhere = clean / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_settings().lease_seconds == 30


def test_env_example_documents_every_setting_with_its_default(clean: Path) -> None:
    example = (REPO / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"NFACTORY_{name.upper()}" in example, f"NFACTORY_{name.upper()} is undocumented"
    (clean / ".env").write_text(example)
    documented = load_settings()
    defaults = load_settings(worker_id=documented.worker_id)
    assert documented == defaults, "a value in .env.example differs from the default"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("NFACTORY_LEASE_SECONDS", "abc", "valid number"),
        ("NFACTORY_LEASE_SECONDS", "1", "greater than or equal to 2"),
        ("NFACTORY_LEASE_SECONDS", "nan", ""),
        ("NFACTORY_MAX_TRANSITIONS_PER_TICK", "0", "greater than or equal to 1"),
        ("NFACTORY_MAX_TRANSITIONS_PER_TICK", "2.5", "valid integer"),
        ("NFACTORY_MAX_TRANSITIONS_PER_TICK", "500", "less than or equal to 200"),
        ("NFACTORY_WORKER_ID", "", "at least 1 character"),
        ("NFACTORY_MAX_INLINE_BACKOFF_SECONDS", "-1", "greater than or equal to 0"),
        ("NFACTORY_CANCEL_GRACE_SECONDS", "-5", "greater than or equal to 0"),
        ("NFACTORY_SUMMARY_COMMENT", "failures", "'all', 'problems' or 'off'"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"{name}: "), message
    assert says in message and repr(value) in message
    assert "\n" not in message


def test_a_bad_value_in_dot_env_names_the_variable_too(clean: Path) -> None:
    (clean / ".env").write_text("NFACTORY_MAX_TRANSITIONS_PER_TICK=lots\n")
    with pytest.raises(SettingsError, match=r"^NFACTORY_MAX_TRANSITIONS_PER_TICK: .*'lots'"):
        load_settings()


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NFACTORY_LEASE_SECONDS", "soon")
    monkeypatch.setenv("NFACTORY_MAX_TRANSITIONS_PER_TICK", "-3")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "NFACTORY_LEASE_SECONDS" in str(raised.value)
    assert "NFACTORY_MAX_TRANSITIONS_PER_TICK" in str(raised.value)


def test_notion_secrets_lose_surrounding_whitespace(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.notion.settings import load_notion_settings

    # a secret written to .env from a file keeps the file's final newline
    (clean / ".env").write_text('NOTION_TOKEN="ntn_fromfile123\\n"\n')
    monkeypatch.delenv("NOTION_TOKEN", raising=False)
    monkeypatch.setenv("NOTION_WEBHOOK_SECRET", "  whsec_abc \r\n")
    s = load_notion_settings()
    assert s.token() == "ntn_fromfile123"
    assert s.notion_webhook_secret is not None
    assert s.notion_webhook_secret.get_secret_value() == "whsec_abc"
    monkeypatch.setenv("NOTION_TOKEN", " \n")
    assert load_notion_settings().notion_token is None  # blank is unset, not a token


@pytest.mark.parametrize("inner", ["Ä", "\x7f", "\n", " ", "\u2028"])
def test_a_token_that_cannot_be_a_header_names_notion_token_and_hides_it(
    monkeypatch: pytest.MonkeyPatch, inner: str
) -> None:
    from integrations.notion.settings import load_notion_settings

    monkeypatch.setenv("NOTION_TOKEN", f"ntn_secretpart{inner}morepart")
    with pytest.raises(SettingsError) as caught:
        load_notion_settings()
    message = str(caught.value)
    assert message.startswith("NOTION_TOKEN: ") and "\n" not in message
    assert "secretpart" not in message and "morepart" not in message


def test_allowed_repliers_are_normalized_and_bad_entries_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from integrations.notion.settings import load_notion_settings

    monkeypatch.setenv(
        "NFACTORY_ALLOWED_REPLIERS",
        " Boss@Example.COM ,0123456789ABCDEF0123456789abcdef,, "
        "01234567-89ab-cdef-0123-456789abcdef",
    )
    assert load_notion_settings().nfactory_allowed_repliers == [
        "boss@example.com",
        "01234567-89ab-cdef-0123-456789abcdef",
    ]
    monkeypatch.setenv("NFACTORY_ALLOWED_REPLIERS", "boss@example.com,boss")
    with pytest.raises(SettingsError, match=r"^NFACTORY_ALLOWED_REPLIERS: 'boss' is neither"):
        load_notion_settings()


def test_the_cancel_grace_reaches_command_agents(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from factory import shell_agent as command
    from factory.cli.runtime import open_runtime

    assert load_settings().cancel_grace_seconds == 10
    monkeypatch.setenv("NFACTORY_CANCEL_GRACE_SECONDS", "2.5")
    monkeypatch.setenv("NFACTORY_DATABASE_URL", f"sqlite:///{clean / 'db.sqlite'}")
    try:
        open_runtime(load_settings()).db.dispose()
        assert command._cancel_grace == 2.5
    finally:
        command.set_cancel_grace(command.DEFAULT_CANCEL_GRACE_SECONDS)


@pytest.mark.parametrize(
    ("value", "says"),
    [("0", "greater than 0"), ("1.5", "less than or equal to 1"), ("third", "valid number")],
)
def test_a_reply_share_outside_zero_to_one_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    from integrations.notion.settings import load_notion_settings

    monkeypatch.setenv("NFACTORY_REPLY_SHARE", value)
    with pytest.raises(SettingsError, match=rf"^NFACTORY_REPLY_SHARE: .*{says}"):
        load_notion_settings()


def test_the_reply_share_sets_the_reads_per_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    from integrations.notion.settings import load_notion_settings

    assert load_notion_settings().reply_schedule(10.0).budget == 10  # a third of 3/s x 10 s
    monkeypatch.setenv("NFACTORY_REPLY_SHARE", "0.5")
    monkeypatch.setenv("NOTION_RATE_LIMIT", "2")
    schedule = load_notion_settings().reply_schedule(10.0)
    assert (schedule.every, schedule.budget) == (10.0, 10)
    assert load_notion_settings().reply_schedule(0.5).every == 1.0  # one read per pass fits


@pytest.mark.parametrize(("value", "pragma"), [(None, 1), ("normal", 1), ("FULL", 2)])
def test_sqlite_sync_sets_how_durable_each_commit_is(
    monkeypatch: pytest.MonkeyPatch, clean: Path, value: str | None, pragma: int
) -> None:
    """The worker's database commits with SQLite's synchronous NORMAL (1) or FULL (2)."""
    from sqlalchemy import text

    from factory.cli.runtime import open_runtime

    monkeypatch.setenv("NFACTORY_DATABASE_URL", f"sqlite:///{clean / 'db.sqlite'}")
    monkeypatch.setenv("NFACTORY_WORKFLOWS", str(REPO / "workflows"))
    if value is not None:
        monkeypatch.setenv("NFACTORY_SQLITE_SYNC", value)
    runtime = open_runtime(load_settings())
    try:
        with runtime.db.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == pragma
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        runtime.db.dispose()


def test_a_bad_sqlite_sync_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NFACTORY_SQLITE_SYNC", "sometimes")
    with pytest.raises(SettingsError, match=r"^NFACTORY_SQLITE_SYNC: .*'normal' or 'full'"):
        load_settings()
