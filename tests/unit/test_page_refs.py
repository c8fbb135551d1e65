"""A card named by task id, page id or page URL: what `card_ref` makes of each."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.notion.page_refs import card_ref, page_url

titles = st.text(max_size=60)
page_ids = st.uuids()
hosts = st.sampled_from(
    [
        "https://www.notion.so",
        "https://notion.so",
        "https://acme.notion.site",
        "http://www.notion.so",
    ]
)


@given(title=titles, page=page_ids)
def test_the_url_the_cli_shows_names_its_page(title: str, page: uuid.UUID) -> None:
    assert card_ref(page_url(title, str(page))) == str(page)


@given(title=titles, page=page_ids, host=hosts, workspace=st.sampled_from(["", "/acme"]))
def test_a_copied_page_link_names_its_page(
    title: str, page: uuid.UUID, host: str, workspace: str
) -> None:
    link = f"{host}{workspace}/{page_url(title, str(page)).rsplit('/', 1)[1]}"
    assert card_ref(link) == str(page)
    assert card_ref(f"  {link}?pvs=4\n") == str(page)
    assert card_ref(link.split("://", 1)[1]) == str(page)  # pasted without its scheme


@given(board=page_ids, view=page_ids, page=page_ids, upper=st.booleans())
def test_a_card_opened_from_its_board_is_named_by_p(
    board: uuid.UUID, view: uuid.UUID, page: uuid.UUID, upper: bool
) -> None:
    # the path names the board; `p` the card peeked at
    p = page.hex.upper() if upper else page.hex
    link = f"https://www.notion.so/acme/{board.hex}?v={view.hex}&p={p}&pm=s"
    assert card_ref(link) == str(page)


@given(page=page_ids, upper=st.booleans())
def test_page_ids_with_or_without_dashes_are_one_id(page: uuid.UUID, upper: bool) -> None:
    for text in (page.hex, str(page)):
        assert card_ref(text.upper() if upper else text) == str(page)


@given(
    st.text(alphabet="0123456789abcdef-", min_size=1, max_size=31).filter(lambda t: t.strip("-"))
)
def test_task_ids_and_prefixes_are_kept_as_typed(text: str) -> None:
    assert card_ref(f" {text} ") == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("https://example.com/Page-" + "a" * 32, "not a Notion page URL"),
        ("https://www.notion.so/Just-a-title", "no page id in the URL"),
        ("https://www.notion.so/", "no page id in the URL"),
        ("https://[/x]", "does not parse"),
    ],
)
def test_what_names_no_card_says_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        card_ref(text)
