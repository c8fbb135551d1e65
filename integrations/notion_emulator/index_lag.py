"""What a data source query sees while Notion's query index lags behind edits.

Notion's query index shows an edit some seconds after it happened: a query may
still find a card by its old values and old `last_edited_time`, and not find a
card created a moment ago, while `GET /v1/pages/{id}` already answers the new
version. With `EmulatorConfig.query_lag_seconds` set, data source queries
filter, sort and return each page as it was before its edits younger than the
lag (a page created within the lag is not found). Off (0) by default.

Kept per page: copies of its earlier versions, only as far back as the
version the index shows now (older ones are dropped as edits age). Versions
are recorded from the moment a lag is set: a page edited before then shows its
live version.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

from .records import Page


class QueryIndex:
    def __init__(self) -> None:
        self._earlier: dict[str, list[Page]] = {}  # page id -> earlier versions, oldest first

    def before_edit(self, page: Page, now: datetime, lag: float) -> None:
        """Call before a page's values or edit time change: keep the version it leaves."""
        if lag <= 0 or page.data_source_id is None:
            return
        versions = self._earlier.setdefault(page.id, [])
        versions.append(copy.deepcopy(page))
        horizon = now - timedelta(seconds=lag)
        # the newest version the index already shows hides every older one
        shown = [i for i, v in enumerate(versions) if v.last_edited_time <= horizon]
        if shown:
            del versions[: shown[-1]]

    def view(self, page: Page, now: datetime, lag: float) -> Page | None:
        """The version of `page` a query sees at `now`, or None if it sees none yet."""
        if lag <= 0:
            return page
        horizon = now - timedelta(seconds=lag)
        if page.last_edited_time <= horizon:
            return page
        earlier = [v for v in self._earlier.get(page.id, []) if v.last_edited_time <= horizon]
        if earlier:
            return earlier[-1]
        if page.id in self._earlier or page.created_time > horizon:
            return None  # created within the lag
        return page  # last edited before the lag was set: its live version stands
