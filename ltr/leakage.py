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

__all__ = ["LeakageError", "LeakageReport", "check_leakage", "perturb_after", "univariate_auc"]

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


def check_leakage(transform: Transform, samples: pd.DataFrame, features: FeatureMatrix, *,
                  allow: Sequence[str] = (), threshold: float = 0.95, rows: int = 2000, days: int = 2,
                  univariate_rows: int = 100_000, seed: int = 0) -> LeakageReport:
    """Run both checks on training rows; raise :class:`LeakageError` when a feature is flagged.

    Parameters
    ----------
    transform : callable
        ``transform(rows, history) -> FeatureMatrix``: the features of ``rows`` with the
        statistics counted from ``history`` (a fitted ``FeatureBuilder.transform``).
    samples : pandas.DataFrame
        The training samples (with ``day``, ``click`` and any outcome columns).
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
        Most training rows (drawn at random) the univariate AUCs are computed on: a leaky
        feature's AUC of 0.95 or more shows on a sample (its standard error at 100,000 rows
        is below 0.002), and a sort per feature over millions of rows would cost minutes.
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
    threshold = check_float(threshold, "threshold", low=0.5, high=1.0)
    rows = check_int(rows, "rows", minimum=1)
    days = check_int(days, "days", minimum=0)
    if features.dense.shape != (len(samples), len(features.dense_names)):
        raise ValueError(f"features must have dense values for every sample ({len(samples)} rows). "
                         f"Got a dense matrix of shape {features.dense.shape} instead.")
    univariate_rows = check_int(univariate_rows, "univariate_rows", minimum=2)
    names = [n.removesuffix(":code") for n in features.dense_names]
    y = samples["click"].to_numpy()
    sample = np.arange(y.size)
    if y.size > univariate_rows:
        sample = np.sort(np.random.default_rng(seed).choice(y.size, size=univariate_rows, replace=False))
    univariate = {
        name: univariate_auc(features.dense[sample, j], y[sample], features.dense_names[j].endswith(":code"), seed)
        for j, name in enumerate(names)
    }
    changed: dict[str, int] = {}
    rng = np.random.default_rng(seed)
    day = samples["day"].to_numpy()
    candidates = np.unique(day)[1:]
    for d in rng.choice(candidates, size=min(days, candidates.size), replace=False):
        on_day = np.flatnonzero(day == d)
        subset = samples.iloc[np.sort(rng.choice(on_day, size=min(rows, on_day.size), replace=False))]
        before = transform(subset, samples).dense
        after = transform(subset, perturb_after(samples, int(d), int(rng.integers(2**31)))).dense
        for j, count in enumerate(_changed(before, after)):
            if count:
                changed[names[j]] = changed.get(names[j], 0) + int(count)
    suspicious = [n for n in names if univariate[n] >= threshold or n in changed]
    report = LeakageReport(univariate, changed, [n for n in suspicious if n not in allow],
                           [n for n in suspicious if n in allow])
    if report.flagged:
        raise LeakageError(report.message(threshold))
    return report
