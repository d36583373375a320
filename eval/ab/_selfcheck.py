"""An A/A self-check on the experiment's own data: how often would this readout cry wolf?

The control bucket's units are split at random into two halves many times (seeded). There is
no effect between the halves by construction, so the share of splits in which a metric is
flagged is the readout's own false-positive rate on these logs, with their clustering, heavy
tails and few-event metrics. A metric whose rate is clearly above ``alpha`` has a variance
estimate that is broken for these logs (a request-level test on logs randomised by user, a
unit whose events are not independent ...): it is flagged when its count of false positives
is improbable (binomial p < 0.001) even at one and a half times ``alpha``.

Everything is vectorised: the per-unit moment columns are computed once and an (units x
splits) 0/1 assignment matrix turns them into every split's sufficient statistics in one
matrix product per chunk of splits. The halves are split by user when buckets are assigned
per user (as the log contract says), also when the readout's unit is the request: that is
what makes the request-level test's optimism visible.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from eval.ab._decide import decide
from eval.ab._inference import Inference, RowStats, arm_moments, infer
from eval.ab._stats import _moment_columns, wilson_interval
from eval.ab._table import SUMS, UnitDays
from eval.ab._units import METRICS_BY_UNIT, check_comparison, check_table, metric_columns
from ltr._validation import check_choice, check_int

__all__ = ["FLAG_FACTOR", "FLAG_P", "SelfCheck", "aa_self_check", "aa_self_check_table", "split_row_stats"]

#: A metric is flagged when its false-positive count is this improbable under FLAG_FACTOR x alpha:
#: a rate clearly above one and a half times the nominal one, not a split-to-split fluctuation
#: or the slight excess that a few hundred heavy-tailed units give any asymptotic test.
FLAG_P = 0.001
FLAG_FACTOR = 1.5
_CHUNK_CELLS = 4_000_000  # units x splits per matrix product


@dataclass(frozen=True)
class SelfCheck:
    """A/A re-splits of the control bucket.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per metric: ``metric, false_positive_rate, ci_low, ci_high`` (95% Wilson),
        ``binom_p`` (one-sided binomial test of the count against ``1.5 alpha``) and ``flagged``
        (``binom_p < 0.001``).
    any_flag_rate : float
        Share of splits in which the readout (primary metric and gated secondaries) flags
        anything: its family-wise false-positive rate.
    splits, seed : int
    split_by : {"user", "request"}
    units : int
        Units of the control bucket that were split.
    """

    table: pd.DataFrame
    any_flag_rate: float
    splits: int
    seed: int
    split_by: str
    units: int


def split_row_stats(y: np.ndarray, x: np.ndarray, assign: np.ndarray, settings: Inference) -> RowStats:
    """Every split's test of every metric: rows (splits, metrics).

    ``y`` and ``x`` are (units, metrics) numerators and denominators; ``assign`` is a (units,
    splits) 0/1 matrix (1 = second half).
    """
    a = np.asarray(assign, dtype=np.float64)
    treat, total = [], []
    for m in range(y.shape[1]):
        columns = _moment_columns(y[:, m], x[:, m])
        treat.append(a.T @ columns)
        total.append(columns.sum(axis=0))
    moments_t = np.stack(treat, axis=1)  # (splits, metrics, 6)
    moments_c = np.stack(total, axis=0)[None, :, :] - moments_t
    return infer(arm_moments(moments_c), arm_moments(moments_t), np.full(moments_t.shape[:2], float(y.shape[0])),
                 settings)


def _control_units(table: UnitDays, control: str) -> tuple[dict[str, np.ndarray], np.ndarray, str]:
    """Per-unit sums of the control bucket, the split group of each unit and what it is split by."""
    rows = table.in_buckets([control])
    # Units in order of first appearance, not of their ids: the random halves then do not
    # depend on how ids are spelled (relabelled logs give the same self-check).
    order = rows.first_order().index
    per_unit = rows.sums_by([table.key]).set_index(table.key).reindex(order)
    sums = {c: per_unit[c].to_numpy(np.float64) for c in SUMS}
    n = len(order)
    if table.unit == "user":
        return sums, np.arange(n), "user"
    # Requests: split by user when no user straddles buckets in the whole experiment.
    straddle = table.frame.groupby("user_id", sort=False)["bucket"].nunique().max() > 1
    if straddle:
        return sums, np.arange(n), "request"
    user_of_unit = rows.frame.drop_duplicates(table.key).set_index(table.key)["user_id"].reindex(order)
    groups, _ = pd.factorize(user_of_unit.to_numpy())
    return sums, groups, "user"


def aa_self_check(samples: pd.DataFrame, control: str, unit: str, primary: str, adjust: str | None,
                  settings: Inference, splits: int = 200, seed: int = 0) -> SelfCheck:
    """False-positive rates of the readout's own tests on random halves of the control bucket.

    ``samples`` is the exposure-level samples frame of :func:`eval.ab.compare_buckets`. Each
    split is tested as the readout tests
    (same unit, metrics, minimum events, sequential setting and decision rule; no CUPED).
    """
    table = check_comparison(samples, unit, [control], primary)
    return aa_self_check_table(table, control, primary, adjust, settings, splits, seed)


def aa_self_check_table(table: UnitDays, control: str, primary: str, adjust: str | None,
                        settings: Inference, splits: int = 200, seed: int = 0) -> SelfCheck:
    """:func:`aa_self_check` on a unit-day table (:class:`eval.ab.UnitDays`)."""
    table = check_table(table, [control], primary)
    unit = table.unit
    settings = settings.checked()
    check_choice(adjust, "adjust", (None, "holm", "bh"))
    check_int(splits, "splits", minimum=1)
    check_int(seed, "seed", minimum=0)
    sums, groups, split_by = _control_units(table, control)
    spec = METRICS_BY_UNIT[unit]
    pairs = [metric_columns(sums, num, den) for _, num, den in spec]
    y = np.column_stack([p[0] for p in pairs])
    x = np.column_stack([p[1] for p in pairs])
    rng = np.random.default_rng(seed)
    n_groups = int(groups.max()) + 1
    chunk = max(1, _CHUNK_CELLS // max(len(groups), 1))
    p_all = []
    for start in range(0, splits, chunk):
        k = min(chunk, splits - start)
        assign = (rng.random((n_groups, k)) < 0.5)[groups]
        p_all.append(split_row_stats(y, x, assign, settings).p_value)
    p = np.concatenate(p_all, axis=0)
    names = [name for name, _, _ in spec]
    primary_mask = np.array([name == primary for name in names])
    decision = decide(p, primary_mask, np.zeros(len(names), dtype=np.int64), adjust, settings.alpha)
    hits = np.nan_to_num(p, nan=1.0) < settings.alpha
    k_hits = hits.sum(axis=0)
    low, high = wilson_interval(k_hits, splits)
    binom_p = stats.binom.sf(k_hits - 1, splits, min(1.0, FLAG_FACTOR * settings.alpha))
    table = pd.DataFrame({"metric": names, "false_positive_rate": k_hits / splits, "ci_low": low, "ci_high": high,
                          "binom_p": binom_p, "flagged": binom_p < FLAG_P})
    return SelfCheck(table=table, any_flag_rate=float(decision.significant.any(axis=-1).mean()), splits=splits,
                     seed=seed, split_by=split_by, units=len(groups))
