"""Per-unit sums of exposures, clicks and orders: what every A/B statistic is computed from."""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from eval.ab._checks import PRE_REQUIRED, REQUIRED, check_samples, example_row, known_buckets
from eval.ab._table import SUMS, UnitDays
from ltr._validation import check_choice
from ltr.metrics._checks import show

__all__ = ["METRICS_BY_UNIT", "UNITS", "Unit", "check_comparison", "check_table", "metric_columns", "pre_sums_of",
           "pre_unit_sums", "unit_sums", "unit_sums_checked"]

Unit = Literal["user", "request"]
UNITS = ("user", "request")

# (metric name per unit, numerator column of unit_sums, denominator column or None for a mean)
METRICS_BY_UNIT: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    unit: (
        (f"exposures_per_{unit}", "exposures", None),
        (f"clicks_per_{unit}", "clicks", None),
        (f"orders_per_{unit}", "orders", None),
        ("ctr", "clicks", "exposures"),
        ("cvr", "orders", "clicks"),
        ("uctr" if unit == "user" else "request_ctr", "has_click", None),
        ("ucvr" if unit == "user" else "request_cvr", "has_order", None),
    )
    for unit in UNITS
}


def _sums_by(frame: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Group codes per row, sorted unique keys and per-key exposure/click/order sums."""
    codes, uniques = pd.factorize(frame[key], sort=True)
    k = len(uniques)
    sums = {
        "exposures": np.bincount(codes, minlength=k).astype(np.int64),
        "clicks": np.bincount(
            codes, weights=frame["click"].to_numpy(np.float64), minlength=k
        ).astype(np.int64),
        "orders": np.bincount(
            codes, weights=frame["order"].to_numpy(np.float64), minlength=k
        ).astype(np.int64),
    }
    return codes, np.asarray(uniques), sums


def unit_sums_checked(samples: pd.DataFrame, unit: str) -> pd.DataFrame:
    """:func:`unit_sums` of an already checked frame."""
    return UnitDays.of(samples, unit).unit_sums()


def unit_sums(samples: pd.DataFrame, unit: Unit = "user") -> pd.DataFrame:
    """Per-unit sums of an exposure-level samples frame.

    Parameters
    ----------
    samples : pandas.DataFrame
        One row per exposure with columns ``request_id``, ``user_id``, ``bucket``, ``click``,
        ``order`` and ``day``.
    unit : {"user", "request"}, default "user"
        Randomisation unit; each unit must sit in exactly one bucket.

    Returns
    -------
    pandas.DataFrame
        One row per unit, sorted by ``<unit>_id``, with columns ``<unit>_id``, ``bucket``,
        ``exposures``, ``clicks``, ``orders`` (int64 sums) and ``has_click``, ``has_order``
        (0/1).

    Raises
    ------
    ValueError
        On an unknown unit, missing columns, missing ids or a unit found in two buckets.
    TypeError
        On a non-string bucket column or non-numeric labels.
    """
    check_choice(unit, "unit", UNITS)
    check_samples(samples, "samples", REQUIRED)
    return unit_sums_checked(samples, unit)


def pre_sums_of(pre_samples: pd.DataFrame, first_day: int) -> tuple[pd.DataFrame, tuple[int, int]]:
    """Per-user sums of a pre-period samples frame (indexed by ``user_id``) and its first and last day."""
    check_samples(pre_samples, "pre_samples", PRE_REQUIRED)
    late = (pre_samples["day"] >= first_day).to_numpy()
    if late.any():
        raise ValueError(
            f"pre_samples must end before the experiment's first day {first_day}. Got a later "
            f"day instead: {example_row(pre_samples, late, 'day')}."
        )
    _, uniques, sums = _sums_by(pre_samples, "user_id")
    days = pre_samples["day"].to_numpy()
    return pd.DataFrame(sums, index=pd.Index(uniques, name="user_id")), (int(days.min()), int(days.max()))


def pre_unit_sums(pre: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Pre-period sums per experiment user (zeros for users without pre-period exposures).

    ``pre`` holds per-user ``exposures``, ``clicks``, ``orders`` indexed by ``user_id``.
    """
    pre = pre[list(SUMS)].copy()
    pre["has_click"] = (pre["clicks"] > 0).astype(np.int64)
    pre["has_order"] = (pre["orders"] > 0).astype(np.int64)
    aligned = pre.reindex(units["user_id"].to_numpy())
    if aligned["exposures"].isna().all():
        raise ValueError(
            "pre_samples must share users with samples. Got no common user_id instead "
            f"(e.g. samples user_id={show(units['user_id'].iloc[0])}, pre_samples "
            f"user_id={show(pre.index[0])})."
        )
    return aligned.fillna(0).astype(np.int64).reset_index(drop=True)


def metric_columns(sums: dict[str, np.ndarray], num: str, den: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit numerator and denominator of a metric from exposure/click/order sums.

    ``num`` and ``den`` are column names of :func:`unit_sums` (``has_click`` and ``has_order``
    are derived here from the click and order sums); ``den=None`` is a mean (denominator 1).
    """
    derived = {"has_click": "clicks", "has_order": "orders"}
    y = (sums[derived[num]] > 0) if num in derived else sums[num]
    y = np.asarray(y, dtype=np.float64)
    x = np.ones_like(y) if den is None else np.asarray(sums[den], dtype=np.float64)
    return y, x


def check_table(table: UnitDays, buckets: list[str], metric: str) -> UnitDays:
    """``table`` when its units each sit in one bucket, the ``buckets`` are among its buckets and
    ``metric`` is a metric of its unit."""
    check_choice(table.unit, "unit", UNITS)
    check_choice(metric, "metric", [name for name, _, _ in METRICS_BY_UNIT[table.unit]])
    known = set(table.known_buckets())
    for bucket in buckets:
        if bucket not in known:
            raise ValueError(f"bucket must be one of {sorted(known)}. Got {bucket!r} instead.")
    table.unit_sums()
    return table


def check_comparison(samples: object, unit: str, buckets: list[str], metric: str,
                     segment: str | None = None) -> UnitDays:
    """The unit-day table (in the samples' row order, with ``segment`` levels) of ``samples``
    when it is a valid samples frame whose units each sit in one bucket, the ``buckets`` are
    among its buckets and ``metric`` is a metric of ``unit``."""
    check_choice(unit, "unit", UNITS)
    check_choice(metric, "metric", [name for name, _, _ in METRICS_BY_UNIT[unit]])
    frame = check_samples(samples, "samples", REQUIRED)
    table = UnitDays.of(frame, unit, segment, buckets=known_buckets(frame))
    return check_table(table, buckets, metric)
