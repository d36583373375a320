"""The lift of one metric day by day and cumulated up to each day.

A novelty effect (a lift that fades), a bug on one day or a treatment switched on late shows
up here and nowhere in the overall number. Both views treat the unit as the randomisation
unit, as the A/B table does:

* per day: the units active that day and their sums of that day;
* cumulative up to day d: every unit seen by day d with its sums over days <= d, which is
  what a readout run on day d would have reported (the "looks" of sequential monitoring).

The cumulative moments are computed without a units x days matrix: a unit's contribution to
the moment sums changes only on the days it is active, so the per-(unit, day) changes of its
moment columns are summed per day and cumulated over days.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from eval.ab._inference import METHOD_NAMES, Inference, RowStats, arm_moments, infer, interval
from eval.ab._stats import _moment_columns
from eval.ab._table import SUMS, UnitDays
from eval.ab._units import METRICS_BY_UNIT, check_comparison, check_table, metric_columns

__all__ = ["daily_lift", "daily_lift_table"]


def _unit_day_sums(table: UnitDays) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per (unit, day) sorted by unit then day, with exposure/click/order sums (unit and
    day as codes), and the sorted distinct days."""
    sums = table.sums_by([table.key, "day"])
    unit_codes, _ = pd.factorize(sums[table.key], sort=True)
    day_codes, days = pd.factorize(sums["day"], sort=True)
    frame = pd.DataFrame({"unit": unit_codes, "day": day_codes,
                          **{c: sums[c].to_numpy(np.float64) for c in SUMS}})
    bucket = table.unit_sums()["bucket"].to_numpy()
    frame["bucket"] = bucket[unit_codes]
    return frame, np.asarray(days)


def _per_arm(values: np.ndarray, day: np.ndarray, arm: np.ndarray, n_days: int) -> np.ndarray:
    """Sums of the rows of ``values`` (rows x 6) per (arm, day): shape (2, n_days, 6)."""
    out = np.zeros((2, n_days, values.shape[1]))
    for a in (0, 1):
        rows = arm == a
        for j in range(values.shape[1]):
            out[a, :, j] = np.bincount(day[rows], weights=values[rows, j], minlength=n_days)
    return out


def _test(moments: np.ndarray, settings: Inference) -> tuple[RowStats, np.ndarray, np.ndarray]:
    rs = infer(arm_moments(moments[0]), arm_moments(moments[1]), moments[0, :, 0] + moments[1, :, 0], settings)
    low, high = interval(rs, settings.alpha, settings)
    return rs, low, high


def daily_lift(samples: pd.DataFrame, control: str, treatment: str, unit: str, metric: str,
               settings: Inference) -> pd.DataFrame:
    """Per-day and cumulative lift of ``metric`` (treatment vs control).

    ``samples`` is the exposure-level samples frame of :func:`eval.ab.compare_buckets`.
    Intervals are fixed-horizon at ``settings.alpha`` for the
    per-day view; the cumulative view uses ``settings`` as given (confidence sequences when
    ``settings.sequential``), whose intervals stay valid however many days one looks at.

    Returns
    -------
    pandas.DataFrame
        One row per day with ``day``, ``control``, ``treatment``, ``lift``, ``ci_low``,
        ``ci_high``, ``p_value``, ``method``, ``units`` (the day's units in both arms) and the
        same with a ``cum_`` prefix for the cumulative view.
    """
    table = check_comparison(samples, unit, [control, treatment], metric)
    return daily_lift_table(table, control, treatment, metric, settings)


def daily_lift_table(table: UnitDays, control: str, treatment: str, metric: str,
                     settings: Inference) -> pd.DataFrame:
    """:func:`daily_lift` on a unit-day table (:class:`eval.ab.UnitDays`)."""
    table = check_table(table, [control, treatment], metric)
    settings = settings.checked()
    num, den = next((n, d) for name, n, d in METRICS_BY_UNIT[table.unit] if name == metric)
    frame, days = _unit_day_sums(table.in_buckets([control, treatment]))
    arm = (frame["bucket"].to_numpy() == treatment).astype(np.int64)
    day = frame["day"].to_numpy()
    y, x = metric_columns({c: frame[c].to_numpy() for c in ("exposures", "clicks", "orders")}, num, den)
    per_day = _per_arm(_moment_columns(y, x), day, arm, len(days))

    cumulative_sums = frame.groupby("unit", sort=False)[["exposures", "clicks", "orders"]].cumsum()
    cy, cx = metric_columns({c: cumulative_sums[c].to_numpy() for c in ("exposures", "clicks", "orders")}, num, den)
    columns = _moment_columns(cy, cx)
    first = np.r_[True, frame["unit"].to_numpy()[1:] != frame["unit"].to_numpy()[:-1]]
    previous = np.vstack([np.zeros((1, columns.shape[1])), columns[:-1]])
    change = columns - np.where(first[:, None], 0.0, previous)
    cumulative = np.cumsum(_per_arm(change, day, arm, len(days)), axis=1)

    fixed = Inference(alpha=settings.alpha, min_events=settings.min_events)
    out = {"day": days.astype(np.int64)}
    for prefix, moments, how in (("", per_day, fixed), ("cum_", cumulative, settings)):
        rs, low, high = _test(moments, how)
        out.update({f"{prefix}control": rs.control, f"{prefix}treatment": rs.treatment, f"{prefix}lift": rs.lift,
                    f"{prefix}ci_low": low, f"{prefix}ci_high": high, f"{prefix}p_value": rs.p_value,
                    f"{prefix}method": np.asarray(METHOD_NAMES)[rs.method],
                    f"{prefix}units": (moments[0, :, 0] + moments[1, :, 0])})
    result = pd.DataFrame(out)
    for prefix in ("", "cum_"):
        result[f"{prefix}units"] = result[f"{prefix}units"].round().astype(np.int64)
    return result
