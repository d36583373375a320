"""Leakage detector: stop training when a feature looks like it knows the label.

Two checks run on the training rows before a model is fitted (``ltr.train`` runs them):

* **univariate AUC**: each feature alone, as a score of the click, must not reach an AUC of
  ``threshold`` (0.95) either way. A number is scored as it is (missing as the lowest value);
  a categorical code by the click rate of its level, counted on the other half of the rows
  (two random halves, so an id with a handful of rows cannot score itself);
* **perturbation**: for a random subset of the rows of a few training days, the labels and
  outcomes of every row on or after that day (the rows' own included) are scrambled, some of
  those rows dropped and others duplicated; a feature of the subset that changes is computed
  from the day it describes or later.

A flagged feature stops training with :class:`LeakageError` naming it, unless it is in
``allow`` (a feature that is legitimately that predictive: say so explicitly).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ltr._validation import check_float, check_int
from ltr.features import FeatureMatrix
from ltr.metrics import auc

__all__ = [
    "KEY_COLUMNS",
    "LeakageError",
    "LeakageReport",
    "changed_counts",
    "check_leakage",
    "check_options",
    "leakage_report",
    "perturb_after",
    "perturbed_days",
    "row_keys",
    "smallest_keys",
    "univariate_auc",
    "univariate_aucs",
]

#: Transform of ``rows`` with the statistics counted from ``history`` (``FeatureBuilder.transform``).
Transform = Callable[[pd.DataFrame, pd.DataFrame], FeatureMatrix]


class LeakageError(ValueError):
    """A feature looks leaky (see :func:`check_leakage`)."""


@dataclass(frozen=True)
class LeakageReport:
    """What :func:`check_leakage` found.

    Attributes
    ----------
    univariate : dict of str -> float
        Each feature's univariate AUC, folded to ``>= 0.5`` (``max(auc, 1 - auc)``).
    changed : dict of str -> int
        Features that changed under the perturbation, with the number of rows that changed.
    flagged : list of str
        Features over the threshold or changed, less the allowed ones.
    allowed : list of str
        Flagged features that were allowed.
    """

    univariate: dict[str, float] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    flagged: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def message(self, threshold: float) -> str:
        """One paragraph naming every flagged feature and why."""
        reasons = []
        for name in self.flagged:
            why = []
            if self.univariate.get(name, 0.0) >= threshold:
                why.append(f"univariate AUC {self.univariate[name]:.3f} >= {threshold}")
            if name in self.changed:
                why.append(f"changed on {self.changed[name]} rows when only rows on or after their day changed")
            reasons.append(f"{name} ({'; '.join(why)})")
        return (f"features look leaky: {', '.join(reasons)}. A feature must use only log rows from before its "
                "sample's day; if one is legitimately this predictive, allow it explicitly "
                "(allow_leaky=(...) or --allow-feature NAME).")


def univariate_auc(values: np.ndarray, y: np.ndarray, categorical: bool, seed: int = 0) -> float:
    """AUC of one feature as a score of ``y``, folded to ``>= 0.5`` (see the module docstring).

    Parameters
    ----------
    values : ndarray of float
        The feature (NaN = missing).
    y : ndarray of 0/1
    categorical : bool
        Score a code by its level's click rate on the other half of the rows.
    seed : int, default 0
        Seed of the halves.

    Returns
    -------
    auc : float
        NaN when ``y`` has one class.
    """
    y = np.asarray(y)
    if np.unique(y).size < 2:
        return float("nan")
    x = np.asarray(values, dtype=np.float64)
    if categorical:
        half = np.random.default_rng(seed).random(x.size) < 0.5
        level = pd.factorize(np.where(np.isnan(x), -1.0, x))[0]
        score = np.empty(x.size)
        prior = float(y.mean())
        for side in (half, ~half):
            clicks = np.bincount(level[side], weights=y[side], minlength=level.max() + 1)
            shown = np.bincount(level[side], minlength=level.max() + 1)
            # Smoothed towards the overall rate so one row cannot give its level a rate of 0 or 1.
            rate = (clicks + 5 * prior) / (shown + 5)
            score[~side] = rate[level[~side]]
        x = score
    else:
        finite = np.isfinite(x)
        low = x[finite].min() - 1 if finite.any() else 0.0
        x = np.where(finite, x, low)
    value = auc(y, x)
    return float(max(value, 1 - value))


def perturb_after(samples: pd.DataFrame, day: int, seed: int) -> pd.DataFrame:
    """``samples`` with every row on or after ``day`` scrambled: labels, outcomes, some dropped, some doubled.

    Rows before ``day`` are unchanged; the row order is shuffled.
    """
    rng = np.random.default_rng(seed)
    frame = samples.copy()
    late = (frame["day"] >= day).to_numpy()
    labels = [c for c in frame.columns if c in ("click", "order") or str(c).startswith("outcome_")]
    for col in labels:
        values = frame[col].to_numpy(copy=True)
        values[late] = rng.permutation(values[late])
        frame[col] = pd.array(values, dtype=frame[col].dtype)  # nullable outcomes stay nullable
    if "click" in frame:
        flip = late & (rng.random(len(frame)) < 0.5)
        frame.loc[flip, "click"] = 1 - frame.loc[flip, "click"]
    drop = late & (rng.random(len(frame)) < 0.2)
    extra = frame.loc[late & ~drop].sample(frac=0.2, random_state=int(rng.integers(2**31)))
    frame = pd.concat([frame.loc[~drop], extra])
    return frame.iloc[rng.permutation(len(frame))]


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows per column where two float matrices differ (NaN equals NaN)."""
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return (~same).sum(axis=0)


#: Columns that identify a sample row (those present are hashed into its key).
KEY_COLUMNS = ("request_id", "item_id", "user_id", "ts", "position")


def row_keys(samples: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """A pseudo-random 64-bit key per row, from the row's identifying columns and ``seed``.

    The rows the checks look at are those with the smallest keys, in key order, so the draw
    depends on the rows and not on their order: the Dask engine, whose partitions hold the
    rows in another order, draws the same rows.
    """
    columns = [c for c in KEY_COLUMNS if c in samples.columns]
    if not columns:
        raise ValueError(f"samples must have one of the columns {list(KEY_COLUMNS)}. "
                         f"Got {[str(c) for c in samples.columns]} instead.")
    hashed = pd.util.hash_pandas_object(samples[columns], index=False, hash_key=f"{seed & (16**16 - 1):016x}")
    return hashed.to_numpy(dtype=np.uint64)


def smallest_keys(keys: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` smallest keys, in (key, label) order (ties are rows equal in every key column)."""
    if keys.size > n:
        cut = np.partition(keys, n - 1)[n - 1]
        pool = np.flatnonzero(keys <= cut)
    else:
        pool = np.arange(keys.size)
    order = np.lexsort((labels[pool], keys[pool]))
    return pool[order][:n]


def perturbed_days(days: np.ndarray, count: int, seed: int) -> list[tuple[int, int]]:
    """The training days the perturbation scrambles from (drawn among those with earlier days),
    each with the seed of its scramble."""
    rng = np.random.default_rng(seed)
    candidates = np.unique(days)[1:]
    chosen = rng.choice(candidates, size=min(count, candidates.size), replace=False)
    return [(int(d), int(rng.integers(2**31))) for d in chosen]


def univariate_aucs(dense: np.ndarray, dense_names: Sequence[str], y: np.ndarray, seed: int = 0) -> dict[str, float]:
    """:func:`univariate_auc` of every column of ``dense`` (codes, ``:code``, scored as categories)."""
    return {name.removesuffix(":code"): univariate_auc(dense[:, j], y, name.endswith(":code"), seed)
            for j, name in enumerate(dense_names)}


def changed_counts(before: np.ndarray, after: np.ndarray, dense_names: Sequence[str]) -> dict[str, int]:
    """Rows per feature where two dense matrices of the same rows differ."""
    return {name.removesuffix(":code"): int(count)
            for name, count in zip(dense_names, _changed(before, after), strict=True) if count}


def leakage_report(univariate: dict[str, float], changed: dict[str, int], allow: Sequence[str],
                   threshold: float) -> LeakageReport:
    """The report of both checks; raise :class:`LeakageError` when a feature not in ``allow`` is flagged."""
    suspicious = [n for n in univariate if univariate[n] >= threshold or n in changed]
    report = LeakageReport(univariate, changed, [n for n in suspicious if n not in allow],
                           [n for n in suspicious if n in allow])
    if report.flagged:
        raise LeakageError(report.message(threshold))
    return report


def check_leakage(transform: Transform, samples: pd.DataFrame, features: FeatureMatrix, *,
                  allow: Sequence[str] = (), threshold: float = 0.95, rows: int = 2000, days: int = 2,
                  univariate_rows: int = 100_000, seed: int = 0) -> LeakageReport:
    """Run both checks on training rows; raise :class:`LeakageError` when a feature is flagged.

    The rows looked at are drawn by :func:`row_keys` (the smallest keys), so the draw does not
    depend on the rows' order; the Dask engine (``ltr.distributed``) draws the same rows.

    Parameters
    ----------
    transform : callable
        ``transform(rows, history) -> FeatureMatrix``: the features of ``rows`` with the
        statistics counted from ``history`` (a fitted ``FeatureBuilder.transform``).
    samples : pandas.DataFrame
        The training samples (with ``day``, ``click``, any outcome columns and the
        identifying columns :data:`KEY_COLUMNS`).
    features : FeatureMatrix
        Their features (``dense`` filled), row for row.
    allow : sequence of str
        Feature names (``dense_names``; categorical codes by their name without ``:code``)
        never flagged.
    threshold : float, default 0.95
        Univariate AUC from which a feature is flagged.
    rows : int, default 2000
        Rows per perturbed day.
    days : int, default 2
        Training days perturbed (drawn among those with earlier days).
    univariate_rows : int, default 100_000
        Most training rows (those with the smallest keys) the univariate AUCs are computed on:
        a leaky feature's AUC of 0.95 or more shows on a sample (its standard error at 100,000
        rows is below 0.002), and a sort per feature over millions of rows would cost minutes.
    seed : int, default 0

    Returns
    -------
    report : LeakageReport
        When nothing (or only allowed features) was flagged.

    Raises
    ------
    LeakageError
        A feature was flagged; the message names it.
    """
    threshold, rows, days, univariate_rows = check_options(threshold, rows, days, univariate_rows)
    if features.dense.shape != (len(samples), len(features.dense_names)):
        raise ValueError(f"features must have dense values for every sample ({len(samples)} rows). "
                         f"Got a dense matrix of shape {features.dense.shape} instead.")
    y = samples["click"].to_numpy()
    keys = row_keys(samples, seed)
    sample = smallest_keys(keys, y, univariate_rows)
    univariate = univariate_aucs(features.dense[sample], features.dense_names, y[sample], seed)
    changed: dict[str, int] = {}
    day = samples["day"].to_numpy()
    for d, scramble in perturbed_days(day, days, seed):
        on_day = np.flatnonzero(day == d)
        subset = samples.iloc[on_day[smallest_keys(keys[on_day], y[on_day], rows)]]
        before = transform(subset, samples)
        after = transform(subset, perturb_after(samples, d, scramble))
        for name, count in changed_counts(before.dense, after.dense, before.dense_names).items():
            changed[name] = changed.get(name, 0) + count
    return leakage_report(univariate, changed, allow, threshold)


def check_options(threshold: float, rows: int, days: int, univariate_rows: int) -> tuple[float, int, int, int]:
    """:func:`check_leakage`'s options, checked."""
    return (check_float(threshold, "threshold", low=0.5, high=1.0), check_int(rows, "rows", minimum=1),
            check_int(days, "days", minimum=0), check_int(univariate_rows, "univariate_rows", minimum=2))
