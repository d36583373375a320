"""A :class:`~ltr.features.FeatureBuilder` fitted from disjoint parts of the training rows.

What ``fit`` learns adds up over disjoint parts of the rows, so a builder can be fitted where
each part lives (a Dask worker) with only small summaries brought together:

1. the distinct values of each automatically chosen categorical (for ``max_levels``): united;
2. the point-in-time counting tables of each part: summed (:func:`sum_tables`; a table is
   partial per (key, time unit), so the sum is the table of all rows, bit for bit); the clicks
   of the recent-click profile: concatenated; the categorical level counts: summed;
3. with the summed tables, the continuous columns of each part's rows: their distinct values
   and counts, summed, give exactly the quantile bin edges of all rows.

The priors come from the summed tables as in ``fit``. :func:`fit_from_parts` runs the three
passes through a ``run(func, *args)`` callable that applies ``func(part, *args)`` to every part
where it lives and returns the results in part order (a list comprehension on one machine;
``ltr.distributed`` on a cluster). The fitted state equals the one ``fit`` learns on the
concatenated parts (tested), so every feature matrix is bit-identical.
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ltr._validation import check_int
from ltr.features._assembly import (
    categorical_blocks,
    categorical_frames,
    continuous_blocks,
    count_tables,
    prepare,
)
from ltr.features._attributes import AttributeTable
from ltr.features._binning import BinCollapseWarning, QuantileBinner, sum_value_counts, value_counts
from ltr.features._blocks import Batch
from ltr.features._categories import MISSING
from ltr.features._counting import fit_priors
from ltr.features._encoding import CategoryEncoder
from ltr.features._pit_stats import DailyStats, as_storable, int_bincount, key_time_cells
from ltr.features._plan import categorical_candidates, level_values, plan_for_samples
from ltr.features._space import FeatureSpace
from ltr.features._tables import ClickHistory, HistoryTables, cutoff

__all__ = ["fit_from_parts", "refresh_from_parts", "sum_tables"]

#: Columns of a prepared frame the click history is built from.
_CLICK_COLUMNS = ("click", "_item_row", "user_id", "ts", "day")

Run = Callable[..., list[Any]]


def _union_levels(levels: Sequence[np.ndarray]) -> np.ndarray:
    present = [lv for lv in levels if lv.size]
    return as_storable(np.unique(np.concatenate(present))) if present else levels[0]


def _merged_codes(table: DailyStats, levels: Sequence[np.ndarray]) -> np.ndarray:
    """Each row's key code of ``table`` in the key space of ``levels`` (supersets of its own)."""
    rest = table.key_codes.copy()
    positions = []
    for lv in reversed(table.levels):
        radix = max(lv.size, 1)
        positions.append(rest % radix)
        rest //= radix
    codes = np.zeros(table.key_codes.size, dtype=np.int64)
    for own, merged, pos in zip(table.levels, levels, reversed(positions), strict=True):
        index = np.searchsorted(merged, own) if own.size else np.zeros(0, dtype=np.int64)
        codes = codes * max(merged.size, 1) + (index[pos] if own.size else pos)
    return codes[table.row_key]


def sum_tables(tables: Sequence[DailyStats]) -> DailyStats:
    """The table of the union of the rows the partial ``tables`` were counted from.

    Bit-identical to :meth:`DailyStats.from_samples` on all those rows: the levels are the
    sorted union of the parts' levels, the cells the union of their cells, the counts sums.

    Parameters
    ----------
    tables : sequence of DailyStats
        Tables of disjoint sets of rows, with the same key columns, time unit and sums.

    Returns
    -------
    stats : DailyStats
    """
    if not tables:
        raise ValueError("tables must hold at least one DailyStats. Got none instead.")
    first = tables[0]
    for table in tables[1:]:
        if (table.key_columns, table.time_column, table.count_names) != (
                first.key_columns, first.time_column, first.count_names):
            raise ValueError(f"tables must share key columns, time unit and sums. Got {first!r} and {table!r} "
                             "instead.")
    levels = [_union_levels([t.levels[j] for t in tables]) for j in range(len(first.key_columns))]
    filled = [t for t in tables if t.row_key.size]
    if not filled:
        return first
    codes = np.concatenate([_merged_codes(t, levels) for t in filled])
    time = np.concatenate([t.row_time for t in filled])
    key_codes, row_key, row_time, inverse = key_time_cells(codes, time, levels)
    counts = {name: int_bincount(inverse, np.concatenate([t.counts[name] for t in filled]), row_key.size)
              for name in first.count_names}
    sums = {name: counts[name] for name in first.count_names[3:]}
    return DailyStats(first.key_columns, levels, key_codes, row_key, row_time, counts["exposures"],
                      counts["clicks"], counts["orders"], time_column=first.time_column, sums=sums)


# ---------------------------------------------------------------------- the passes, on a part
def _levels_of(samples: pd.DataFrame, builder: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    return level_values(samples, names, builder.items_, builder.users_)


def _counts_of(samples: pd.DataFrame, builder: Any) -> dict[str, Any]:
    """Pass 2 on a part: its tables, its clicks, its last time unit, its categorical level counts."""
    frame = prepare(builder, samples, "samples", labels=True)
    clicked = frame["click"] > 0
    categorical = {group: (CategoryEncoder(min_count=count, missing=MISSING).level_counts(columns), list(columns))
                   for group, (columns, count) in categorical_frames(builder, frame).items()}
    return {"stats": count_tables(builder, frame, clicks=False).stats,
            "clicks": {name: frame[name][clicked] for name in _CLICK_COLUMNS},
            "end": int(frame[builder._time_column()].max()) + 1, "categorical": categorical}


def _values_of(samples: pd.DataFrame, builder: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pass 3 on a part: the distinct values and counts of each continuous column."""
    frame = prepare(builder, samples, "samples", labels=True)
    end, span = cutoff(frame, builder.lag_seconds)
    batch = Batch(frame, end, span, builder.tables_, None)
    return [value_counts(column) for block in continuous_blocks(builder) for column in block.columns(batch)]


# ---------------------------------------------------------------------- on the client
def _fit_plan(builder: Any, run: Run, columns: pd.Index) -> None:
    params = builder.get_params()
    levels = None
    if params["categorical"] is None:
        _, names = categorical_candidates(columns, params, builder.items_, builder.users_)
        parts = run(_levels_of, builder, names)
        levels = {name: int(pd.Series(np.concatenate([np.asarray(p[name], dtype=object) for p in parts]))
                            .nunique(dropna=True)) for name in names}
    builder.plan_ = plan_for_samples(pd.DataFrame(columns=columns), params, builder.items_, builder.users_,
                                     levels=levels)


def _summed_tables(builder: Any, parts: list[dict[str, Any]]) -> HistoryTables:
    """The parts' tables summed and their clicks' history."""
    families = list(builder.plan_.families)
    stats = {family: sum_tables([part["stats"][family] for part in parts]) for family in families}
    history = None
    if builder.items_ is not None and builder.items_.embedding is not None:
        clicks = {name: np.concatenate([part["clicks"][name] for part in parts]) for name in _CLICK_COLUMNS}
        history = ClickHistory.from_frame(clicks, builder._time_column(), builder.items_.embedding)
    return HistoryTables(stats, history)


def _fit_tables(builder: Any, parts: list[dict[str, Any]]) -> None:
    builder.tables_ = _summed_tables(builder, parts)
    builder.stats_end_ = max(part["end"] for part in parts)
    builder.freeze_end_ = builder.stats_end_
    builder.priors_ = fit_priors(builder.tables_.stats, builder.prior_method)
    encoders = {}
    for group, (_, names) in parts[0]["categorical"].items():
        count = int(builder.id_min_count) if group == "ids" else int(builder.min_count)
        found = [part["categorical"][group][0] for part in parts]
        encoders[group] = CategoryEncoder(min_count=count, missing=MISSING).fit_counts(
            [counts for counts, _ in found], [kinds for _, kinds in found], names)
    builder.encoders_ = encoders


def _fit_binner(builder: Any, parts: list[list[tuple[np.ndarray, np.ndarray]]]) -> None:
    continuous = continuous_blocks(builder)
    names = [name for block in continuous for name in block.names]
    summed = [sum_value_counts([part[j] for part in parts]) for j in range(len(names))]
    keep = [j for j, (values, _) in enumerate(summed) if values.size]
    builder.continuous_names_ = names
    builder.binned_names_ = [names[j] for j in keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinCollapseWarning)  # as in fit: collapsed edges are the norm
        builder.binner_ = QuantileBinner(n_bins=builder.n_bins).fit_counts(
            [summed[j][0] for j in keep], [summed[j][1] for j in keep], builder.binned_names_)
    value_names = [name for block in continuous for name in block.value_names]
    builder.space_ = FeatureSpace.from_transformers(builder.binner_, *builder.encoders_.values(),
                                                    value_features=value_names)
    builder._set_layout(continuous, categorical_blocks(builder))


def fit_from_parts(builder: Any, run: Run, columns: Sequence[str], *, items: pd.DataFrame | None = None,
                   users: pd.DataFrame | None = None) -> Any:
    """Fit ``builder`` on the union of parts of the training rows it never holds.

    Parameters
    ----------
    builder : FeatureBuilder
        Unfitted; fitted in place and returned.
    run : callable
        ``run(func, *args)``: ``func(samples, *args)`` on the training samples of every part
        (disjoint rows, together the training rows), the results in part order.
    columns : sequence of str
        The samples' columns (every part has them, in this order).
    items, users : pandas.DataFrame, optional
        As in ``FeatureBuilder.fit``.

    Returns
    -------
    builder : FeatureBuilder
        Fitted with the state ``builder.fit`` learns on the concatenated parts.
    """
    builder._validate_params()
    builder.items_ = None if items is None else AttributeTable.from_frame(items, "item_id", "items")
    builder.users_ = None if users is None else AttributeTable.from_frame(users, "user_id", "users")
    _fit_plan(builder, run, pd.Index(columns))
    _fit_tables(builder, run(_counts_of, builder))
    _fit_binner(builder, run(_values_of, builder))
    return builder



def _history_of(samples: pd.DataFrame, builder: Any, through: int) -> dict[str, Any]:
    """The counting tables and clicks of a part's labelled rows of days up to ``through``."""
    frame = prepare(builder, samples, "history", labels=True, context=False)
    keep = frame["day"] <= through
    frame = {name: values[keep] for name, values in frame.items()}
    clicked = frame["click"] > 0
    return {"stats": count_tables(builder, frame, clicks=False).stats, "rows": int(keep.sum()),
            "clicks": {name: frame[name][clicked] for name in _CLICK_COLUMNS}}


def refresh_from_parts(builder: Any, run: Run, through: int) -> Any:
    """``builder.refreshed(history, through)`` where the history rows are parts held elsewhere.

    Parameters
    ----------
    builder : FeatureBuilder
        Fitted, with day cut-offs (``lag_seconds`` None).
    run : callable
        As in :func:`fit_from_parts`, over the parts of the history (labelled samples).
    through : int
        Last day (day index) of the statistics.

    Returns
    -------
    builder : FeatureBuilder
        A copy with the statistics of the parts' rows of days up to ``through``: the state
        ``builder.refreshed`` gives on the concatenated parts.
    """
    check_is_fitted(builder, "space_")
    if builder.lag_seconds is not None:
        raise ValueError(f"lag_seconds must be None to refresh by days. Got {builder.lag_seconds} instead.")
    through = check_int(through, "through")
    parts = run(_history_of, builder, through)
    if not sum(part["rows"] for part in parts):
        raise ValueError(f"history must hold rows on or before day {through}. Got none instead.")
    new = copy.copy(builder)
    new.tables_ = _summed_tables(builder, parts)
    new.stats_end_ = through + 1
    return new
