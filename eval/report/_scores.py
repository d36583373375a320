"""The calibration section and the score summary of the readout, from counts per distinct score.

The counts (:func:`eval.online_offline.score_counts`: rows and clicks per (day, bucket, score
value), summed over partitions by :func:`eval.online_offline.reduce_score_counts`) give the
AUC table (:func:`eval.online_offline.auc_rows`) and the calibration section here: the
equal-mass table, ECE, log loss, normalised entropy and the per-bucket ratio are sums over them
in score order.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval.ab import NO_BUCKET
from eval.online_offline import auc_rows, score_totals
from eval.report._json import clean, records
from ltr.metrics import calibration_table_counts

__all__ = ["ScoreSummary", "calibration_section", "summarize_scores"]

_CLIP = 1e-7


def calibration_section(cells: pd.DataFrame, name: str) -> dict:
    """The calibration section of the readout from a score count table of predicted probabilities."""
    p, count, pos = score_totals(cells)
    total, clicks = int(count.sum()), int(pos.sum())
    table = calibration_table_counts(p, count, pos, n_bins=10)
    gap = (table["mean_predicted"] - table["actual_rate"]).abs().to_numpy()
    # Correctly rounded sums (math.fsum), never np.dot: a BLAS dot's result depends on its thread
    # count, which differs between a Dask worker (one thread) and the client.
    mean_p, rate = math.fsum(p * count) / total, clicks / total
    out = {"score": name, "n": total, "mean_predicted": mean_p, "actual_rate": rate,
           "predicted_over_actual": mean_p / rate if rate > 0 else None,
           "ece": math.fsum(table["count"].to_numpy() * gap) / int(table["count"].sum()), "table": records(table)}
    clipped = np.clip(p, _CLIP, 1 - _CLIP)
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = -math.fsum(np.concatenate([pos * np.log(clipped), (count - pos) * np.log1p(-clipped)])) / total
    out["logloss"] = loss
    base = -(rate * np.log(rate) + (1.0 - rate) * np.log1p(-rate)) if 0 < rate < 1 else float("nan")
    out["normalized_entropy"] = loss / base
    if set(pd.unique(cells["bucket"])) == {NO_BUCKET}:
        return clean(out)
    by_bucket = cells.assign(weighted=cells["score"] * cells["n"]).groupby("bucket", sort=True)[
        ["weighted", "n", "positives"]].sum()
    frame = pd.DataFrame({"mean_predicted": by_bucket["weighted"] / by_bucket["n"],
                          "actual_rate": by_bucket["positives"] / by_bucket["n"],
                          "n": by_bucket["n"].astype(np.int64)})
    frame["ratio"] = frame["mean_predicted"] / frame["actual_rate"]
    out["by_bucket"] = records(frame)
    return clean(out)


@dataclass(frozen=True)
class ScoreSummary:
    """The AUC table (:func:`auc_rows`) and the calibration section (:func:`calibration_section`,
    or a note when no row has a score) of one score on the readout window."""

    auc: pd.DataFrame
    calibration: dict


def summarize_scores(cells: pd.DataFrame, days: tuple[int, int], name: str = "online rank_score") -> ScoreSummary:
    """The :class:`ScoreSummary` of the days ``lo..hi`` of a :func:`score_counts` table."""
    window = cells.loc[cells["day"].between(days[0], days[1]).to_numpy()]
    calibration = (calibration_section(window, name) if len(window)
                   else {"note": "no score to calibrate (no rank_score in the readout window)."})
    return ScoreSummary(auc=auc_rows({"online_auc": window}), calibration=calibration)
