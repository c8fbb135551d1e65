"""Which columns of a table fit a terminal's width, and the table made of them.

`fit` is the decision (pure): every column has a width below which it stops being
readable and a rank; the lowest ranks are kept until the next would not fit. Wrapping
columns (titles, notes, errors) then share what is left, so nothing is cut to "attemp…".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

# What one column costs beyond its text in `table()`: padding each side, a separator.
GAP = 3
FOLD_AT = 8  # a wrapping column may be made this narrow, long words folded


@dataclass(frozen=True)
class Col:
    name: str
    min_width: int = 0  # narrowest readable width; never below the header's length
    rank: int = 0  # 0 is always kept; higher ranks go first when space runs out
    wrap: bool = False  # long text wraps (over lines) instead of pushing the table wider
    want: int = 0  # a wrapping column's comfortable width, which `fit` leaves room for

    @property
    def width(self) -> int:
        return max(self.min_width, len(self.name))

    @property
    def room(self) -> int:
        """What `fit` counts for it: fixed columns their width, wrapping ones their want."""
        return max(self.width, self.want) if self.wrap else self.width


def sized(cols: Sequence[Col], rows: Sequence[Mapping[str, str]]) -> list[Col]:
    """Fixed columns widened to their longest cell (they never wrap, so they need it)."""
    return [
        c
        if c.wrap
        else replace(c, min_width=max([c.min_width, *(cell_len(r.get(c.name, "")) for r in rows)]))
        for c in cols
    ]


def fit(cols: Sequence[Col], width: int, *, wide: bool = False) -> list[Col]:
    """The columns to show at `width` characters, in their given order.

    Rank 0 columns are always kept; then whole ranks are added, lowest first, while
    all of them still fit (fixed columns at their width, wrapping ones at their want).
    `wide` keeps everything.
    """
    if wide:
        return list(cols)
    ranks = sorted({c.rank for c in cols})
    keep = {r for r in ranks if r == 0}
    for rank in ranks:
        if rank == 0:
            continue
        trial = keep | {rank}
        need = sum(c.room + GAP for c in cols if c.rank in trial)
        if need > width:
            break
        keep = trial
    return [c for c in cols if c.rank in keep]


def table(cols: Sequence[Col], *, wide: bool = False) -> Table:
    """A light table of `cols`: fixed columns never wrap, wrapping ones fold long words."""
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=True, expand=False)
    for c in cols:
        if c.wrap and not wide:
            t.add_column(c.name, min_width=c.width, overflow="fold")
        else:
            t.add_column(c.name, min_width=c.width, no_wrap=not c.wrap, overflow="fold")
    return t


class Wrapping(Text):
    """Cell text that may be folded mid-word: rich would otherwise never make a column
    narrower than its longest word (a path, a URL) and crop the table's other cells."""

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        found = super().__rich_measure__(console, options)
        return Measurement(min(found.minimum, FOLD_AT), found.maximum)


def cell(col: Col, text: str, *, wide: bool = False) -> Text:
    """A cell of `col`: wrapping columns fold long words unless the table is wide."""
    return Wrapping(text, overflow="fold") if col.wrap and not wide else Text(text)


def dropped(shown: Sequence[Col], every: Sequence[Col]) -> list[str]:
    names = {c.name for c in shown}
    return [c.name for c in every if c.name not in names]


def print_table(console: Console, t: Table, *, wide: bool = False) -> None:
    """Print at the console's width, or (`wide`) as wide as the table's longest lines."""
    if not wide:
        console.print(t)
        return
    natural = Measurement.get(console, console.options.update(width=100_000), t).maximum
    width = max(console.width, natural)
    Console(
        width=width,
        file=console.file,
        force_terminal=console.is_terminal,
        color_system=console.color_system,  # type: ignore[arg-type]
        highlight=False,
    ).print(t)
