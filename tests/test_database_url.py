"""NFACTORY_DATABASE_URL as people write it: the password reaches the driver and nowhere
else, and a URL that cannot work is one line naming the setting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from factory.store import repo
from factory.store.db import Database, DatabaseError, hide_password, make_engine


def test_a_postgresql_urls_password_reaches_the_driver() -> None:
    # str() of a SQLAlchemy URL hides the password as ***: the engine must not be built
    # from it, or every password-protected database refuses the worker
    db = make_engine("postgresql://bob:s3cret@127.0.0.1:5432/app")
    try:
        assert db.url.password == "s3cret"
        assert db.url.drivername == "postgresql+psycopg"
    finally:
        db.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:s3cretpw@db.example:54x2/app",  # a port typo: not parsable
        "postgresql://bob:s3cretpw@db.example:port/app",
        "bob:s3cretpw@db.example/app",
    ],
)
def test_an_unparsable_url_is_one_line_without_its_password(url: str) -> None:
    with pytest.raises(DatabaseError) as caught:
        make_engine(url)
    message = str(caught.value)
    assert "s3cretpw" not in message
    assert message.startswith("NFACTORY_DATABASE_URL ") and "\n" not in message


def test_an_unknown_driver_is_one_line_naming_it() -> None:
    with pytest.raises(DatabaseError, match=r"driver 'postgresql\+psycopg3'"):
        make_engine("postgresql+psycopg3://bob@127.0.0.1/app")


def test_hide_password_masks_only_the_password() -> None:
    assert hide_password("postgresql://bob:pw@h:5432/db") == "postgresql://bob:***@h:5432/db"
    assert hide_password("sqlite:///x.db") == "sqlite:///x.db"
    assert hide_password("postgresql://bob@h/db") == "postgresql://bob@h/db"


def test_a_card_reference_is_not_a_like_pattern(db: Database) -> None:
    now = datetime.now(UTC)
    with db.begin() as conn:
        repo.create_task(conn, factory_id="a", title="t", now=now)
    with db.connect() as conn:
        for pattern in ("%%%%", "____", "%_%_"):
            with pytest.raises(repo.NotFound):
                repo.find_task(conn, pattern)
