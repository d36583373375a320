"""The point-in-time sources of the features: counting tables and the click history.

Both are built from a labelled, prepared frame (the training rows at ``fit``, or a
``history`` frame at ``transform``) and are only ever queried "strictly before a cut-off",
which is what makes the features leakage-free: :class:`~ltr.features.DailyStats` sums rows
with ``t < end`` and :class:`ClickHistory` returns clicks with ``ts`` before the cut-off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ltr._validation import check_choice
from ltr.artifacts import check_state
from ltr.features._pit_stats import DailyStats
from ltr.features._state import export_state, import_state
from ltr.logs import SECONDS_PER_DAY, UserHistory

__all__ = ["ClickHistory", "HistoryTables", "build_tables", "cutoff"]

_FORMAT = "ltr.ClickHistory"
_TABLES_FORMAT = "ltr.HistoryTables"
_FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class ClickHistory:
    """Clicks on items with an embedding, for "the last N clicks of a user before a cut-off".

    The events are a :class:`ltr.logs.UserHistory` clocked by ``ts`` (ties by item row),
    whose items are rows of the items table. With day cut-offs (``time_column="day"``) a
    query "clicks on days before ``d``" becomes "clicks with ``ts`` before the first click
    of the first click day ``>= d``": days grow with ``ts``, so both select the same clicks,
    and the clicks keep their ``ts`` order within a day.

    Parameters
    ----------
    events : UserHistory
        Users, click times (``ts``) and item rows.
    time_column : {"day", "ts"}
        Unit of the cut-offs :meth:`cutoff` receives.
    days : ndarray of int64
        Distinct click days, sorted (empty for ``"ts"``).
    first_ts : ndarray of int64
        First click ``ts`` of each of ``days``.
    """

    events: UserHistory
    time_column: str
    days: np.ndarray
    first_ts: np.ndarray
    _after_last: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # One past the last click's ts (the bound of a cut-off after every click day): computed
        # once here, not per serving request, and not lazily (transform never changes state).
        object.__setattr__(self, "_after_last", int(self.events.time.max()) + 1 if self.events.n_events else 0)

    @classmethod
    def from_frame(cls, frame: Mapping[str, np.ndarray], time_column: str, embedding: np.ndarray) -> ClickHistory:
        """The clicks of a labelled prepared frame whose item has an embedding.

        Parameters
        ----------
        frame : mapping of column -> ndarray
            Prepared columns ``click``, ``_item_row``, ``user_id``, ``ts``, ``day``.
        time_column : {"day", "ts"}
            Unit of the cut-offs.
        embedding : ndarray of shape (n_items, dim)
            Unit item embeddings (NaN rows have none).
        """
        check_choice(time_column, "time_column", ("day", "ts"))
        clicked = frame["click"] > 0
        item_row = frame["_item_row"][clicked]
        keep = item_row >= 0
        keep &= np.isfinite(embedding[np.maximum(item_row, 0), 0])
        ts = frame["ts"][clicked][keep]
        events = UserHistory(frame["user_id"][clicked][keep], ts, item_row[keep])
        days = first_ts = np.empty(0, dtype=np.int64)
        if time_column == "day":
            day = frame["day"][clicked][keep].astype(np.int64)
            order = np.lexsort((ts, day))
            day, ts = day[order], ts[order]
            first = np.ones(day.size, dtype=bool)
            first[1:] = day[1:] != day[:-1]
            days, first_ts = day[first], ts[first]
        return cls(events, time_column, days, first_ts)

    def cutoff(self, end: np.ndarray) -> np.ndarray:
        """Click-time bound per query: the clicks before ``end`` have ``ts`` below it."""
        if self.time_column == "ts":
            return end
        pos = np.searchsorted(self.days, end, side="left")
        return np.where(pos < self.days.size, self.first_ts[np.minimum(pos, max(self.days.size - 1, 0))],
                        self._after_last)


    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Export as JSON-able metadata and plain arrays (the events under ``events.``)."""
        arrays = {"days": self.days, "first_ts": self.first_ts}
        events = export_state(self.events, "events.", arrays)
        meta = {"format": _FORMAT, "version": _FORMAT_VERSION, "time_column": self.time_column, "events": events}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> ClickHistory:
        """Rebuild from :meth:`to_state` output."""
        check_state(meta, _FORMAT, _FORMAT_VERSION, ("time_column", "events"))
        return cls(
            import_state(UserHistory, meta["events"], "events.", arrays),
            meta["time_column"],
            np.asarray(arrays["days"], dtype=np.int64),
            np.asarray(arrays["first_ts"], dtype=np.int64),
        )


@dataclass(frozen=True, eq=False)
class HistoryTables:
    """What the point-in-time features are counted from.

    A new point-in-time source (say, a history of (user, item author) events) is one more
    field here, built in :func:`build_tables` and stored by :meth:`to_state`.

    Parameters
    ----------
    stats : dict of str -> DailyStats
        Counting table of each key family.
    clicks : ClickHistory or None
        Click history of the recent-click profile (None without item embeddings).
    """

    stats: Mapping[str, DailyStats]
    clicks: ClickHistory | None

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Export every table (arrays under ``stats.{i}.`` and ``clicks.``)."""
        arrays: dict[str, np.ndarray] = {}
        families = list(self.stats)
        meta = {
            "format": _TABLES_FORMAT,
            "version": _FORMAT_VERSION,
            "families": families,
            "stats": [export_state(self.stats[f], f"stats.{i}.", arrays) for i, f in enumerate(families)],
            "clicks": None if self.clicks is None else export_state(self.clicks, "clicks.", arrays),
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> HistoryTables:
        """Rebuild from :meth:`to_state` output."""
        check_state(meta, _TABLES_FORMAT, _FORMAT_VERSION, ("families", "stats", "clicks"))
        stats = {
            family: import_state(DailyStats, table, f"stats.{i}.", arrays)
            for i, (family, table) in enumerate(zip(meta["families"], meta["stats"], strict=True))
        }
        clicks = None if meta["clicks"] is None else import_state(ClickHistory, meta["clicks"], "clicks.", arrays)
        return cls(stats, clicks)


def build_tables(
    frame: Mapping[str, np.ndarray],
    families: Mapping[str, tuple[str, ...]],
    time_column: str,
    embedding: np.ndarray | None,
    sums: Mapping[str, Sequence[str]] | None = None,
) -> HistoryTables:
    """Counting tables of ``families`` and, given item embeddings, the click history.

    Parameters
    ----------
    frame : mapping of column -> ndarray
        A labelled prepared frame (click and order columns).
    families : mapping of str -> tuple of str
        Key columns of each family.
    time_column : {"day", "ts"}
        Time unit of the tables.
    embedding : ndarray or None
        Unit item embeddings; None builds no click history.
    sums : mapping of str -> sequence of str, optional
        More integer columns of the frame some families' tables sum (the outcomes).
    """
    sums = sums or {}
    stats = {family: DailyStats.from_samples(frame, columns, time_column, sums.get(family, ()))
             for family, columns in families.items()}
    clicks = None if embedding is None else ClickHistory.from_frame(frame, time_column, embedding)
    return HistoryTables(stats, clicks)


def cutoff(frame: Mapping[str, np.ndarray], lag_seconds: int | None) -> tuple[np.ndarray, int]:
    """Exclusive cut-off of each row in the tables' time unit, and the time units per day.

    Without a lag a row sees the days before its own (tables in days); with one, the
    seconds before ``ts - lag_seconds`` (tables in seconds).
    """
    if lag_seconds is None:
        return frame["day"], 1
    return frame["ts"] - int(lag_seconds), SECONDS_PER_DAY
