"""Which columns fit a terminal's width: `fit`, the pure decision behind status/history."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from factory.cli.columns import GAP, Col, fit, sized

cols_st = st.lists(
    st.builds(
        Col,
        name=st.text(alphabet="abcdefgh ", min_size=1, max_size=12),
        min_width=st.integers(0, 30),
        rank=st.integers(0, 5),
        wrap=st.booleans(),
        want=st.integers(0, 40),
    ),
    max_size=10,
    unique_by=lambda c: c.name,
)
widths = st.integers(20, 300)


def need(cols: list[Col]) -> int:
    return sum(c.room + GAP for c in cols)


@given(cols_st, widths)
def test_what_is_kept_fits_unless_rank_0_alone_does_not(cols: list[Col], width: int) -> None:
    kept = fit(cols, width)
    assert all(c in kept for c in cols if c.rank == 0)
    if any(c.rank > 0 for c in kept):
        assert need(kept) <= width


@given(cols_st, widths)
def test_columns_keep_their_order_and_whole_ranks_go(cols: list[Col], width: int) -> None:
    kept = fit(cols, width)
    assert kept == [c for c in cols if c in kept]
    ranks = {c.rank for c in kept}
    assert all(c in kept for c in cols if c.rank in ranks)
    # a dropped rank is never below a kept one: the least wanted go first
    gone = {c.rank for c in cols} - ranks
    assert not gone or not ranks or min(gone) > max(ranks)


@given(cols_st, widths, widths)
def test_a_wider_terminal_never_shows_fewer_columns(cols: list[Col], a: int, b: int) -> None:
    narrow, wide = sorted((a, b))
    assert set(fit(cols, narrow)) <= set(fit(cols, wide))


@given(cols_st, widths)
def test_wide_shows_everything(cols: list[Col], width: int) -> None:
    assert fit(cols, width, wide=True) == cols


def test_headers_are_never_narrower_than_their_names() -> None:
    assert Col("attempts", 3).width == 8
    assert Col("note", 4, wrap=True, want=24).room == 24


printable = st.characters(whitelist_categories=("L", "N", "P", "Zs"))


@given(st.lists(st.text(printable, max_size=30), max_size=5))
def test_fixed_columns_are_as_wide_as_their_longest_cell(cells: list[str]) -> None:
    (fixed, wrapping) = sized(
        [Col("at", 2), Col("note", 4, wrap=True)], [{"at": c, "note": c} for c in cells]
    )
    assert fixed.width >= max([2, *(cell_len(c) for c in cells)])
    assert wrapping.width == 4


def test_status_at_80_columns() -> None:
    from factory.cli.tasks_view import STATUS_COLS

    shown = [c.name for c in fit(STATUS_COLS, 80)]
    assert shown == ["task", "title", "state", "last error", "updated"]
    assert len(fit(STATUS_COLS, 200)) > len(shown)
