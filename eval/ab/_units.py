"""Per-unit sums of exposures, clicks and orders: what every A/B statistic is computed from."""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from eval.ab._checks import PRE_REQUIRED, REQUIRED, check_samples, example_row
from ltr._validation import check_choice
from ltr.metrics._checks import show

__all__ = ["UNITS", "Unit", "pre_unit_sums", "unit_sums", "unit_sums_checked"]

Unit = Literal["user", "request"]
UNITS = ("user", "request")


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
    key = f"{unit}_id"
    codes, uniques, sums = _sums_by(samples, key)
    bucket_codes, bucket_values = pd.factorize(samples["bucket"].astype(object))
    by_unit = pd.Series(bucket_codes).groupby(codes).agg(["min", "max"])
    mixed = by_unit["min"].to_numpy() != by_unit["max"].to_numpy()
    if mixed.any():
        first = int(np.flatnonzero(mixed)[0])
        buckets = sorted(
            {str(bucket_values[by_unit["min"].iloc[first]]),
             str(bucket_values[by_unit["max"].iloc[first]])}
        )
        raise ValueError(
            f"samples.bucket must be assigned consistently per {unit} when unit={unit!r}. "
            f"Got {key}={show(uniques[first])} in buckets {buckets} instead "
            f"({int(mixed.sum())} {unit}s in more than one bucket)."
        )
    out = pd.DataFrame(
        {
            key: uniques,
            "bucket": np.asarray(bucket_values, dtype=object)[by_unit["min"].to_numpy()],
            "exposures": sums["exposures"],
            "clicks": sums["clicks"],
            "orders": sums["orders"],
            "has_click": (sums["clicks"] > 0).astype(np.int64),
            "has_order": (sums["orders"] > 0).astype(np.int64),
        }
    )
    out["bucket"] = out["bucket"].astype(str)
    return out


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


def pre_unit_sums(pre_samples: pd.DataFrame, units: pd.DataFrame, first_day: int) -> pd.DataFrame:
    """Pre-period sums per experiment user (zeros for users without pre-period exposures)."""
    check_samples(pre_samples, "pre_samples", PRE_REQUIRED)
    late = (pre_samples["day"] >= first_day).to_numpy()
    if late.any():
        raise ValueError(
            f"pre_samples must end before the experiment's first day {first_day}. Got a later "
            f"day instead: {example_row(pre_samples, late, 'day')}."
        )
    _, uniques, sums = _sums_by(pre_samples, "user_id")
    pre = pd.DataFrame(sums, index=pd.Index(uniques, name="user_id"))
    pre["has_click"] = (pre["clicks"] > 0).astype(np.int64)
    pre["has_order"] = (pre["orders"] > 0).astype(np.int64)
    aligned = pre.reindex(units["user_id"].to_numpy())
    if aligned["exposures"].isna().all():
        raise ValueError(
            "pre_samples must share users with samples. Got no common user_id instead "
            f"(e.g. samples user_id={show(units['user_id'].iloc[0])}, pre_samples "
            f"user_id={show(uniques[0])})."
        )
    return aligned.fillna(0).astype(np.int64).reset_index(drop=True)
