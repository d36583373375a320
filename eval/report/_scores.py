"""AUC, GAUC and calibration of the readout from counts per distinct score.

* :func:`score_counts`: rows and clicks per (day, bucket, score value) of the rows with a score;
  summed over partitions by :func:`reduce_score_counts` (integers, exact). The AUC table (all,
  per day, per bucket: exact AUC with half credit for ties) and the calibration section
  (equal-mass table, ECE, log loss, normalised entropy, per bucket) are sums over it in score
  order.
* :func:`user_score_counts` and :func:`user_aucs`: rows and clicks per (user, score value) of the
  window, reduced to one row per user (rows, clicks, twice the Mann-Whitney U); GAUC is their
  exposure-weighted mean with a correctly rounded sum (:func:`math.fsum`), so it does not depend
  on the order the users come in (the Dask engine computes them on the workers by user hash).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval.ab import NO_BUCKET
from eval.report._json import clean, records
from ltr.logs import format_day
from ltr.metrics import calibration_table_counts
from ltr.metrics._auc_kernels import auc_counts, group_twice_u_counts

__all__ = ["ScoreSummary", "auc_rows", "calibration_section", "gauc_entry", "reduce_score_counts",
           "reduce_user_counts", "score_counts", "summarize_scores", "user_aucs", "user_score_counts"]

_CELL = ["day", "bucket", "score"]
_COUNTS = ["n", "positives"]
_CLIP = 1e-7


def _counted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``n`` and ``positives`` summed per ``keys``, sorted by them (the first key major).

    One lexsort of integer codes and floats, then run sums: several times faster than a pandas
    groupby on a string column over millions of rows.
    """
    codes: list[np.ndarray] = []
    labels: list[np.ndarray | None] = []
    for key in keys:
        values = frame[key].to_numpy()
        if values.dtype.kind == "f":
            codes.append(values + 0.0)  # -0.0 and 0.0 are one score
            labels.append(None)
        else:
            code, uniques = pd.factorize(values, sort=True)
            codes.append(code)
            labels.append(np.asarray(uniques))
    order = np.lexsort(codes[::-1])
    sorted_codes = [c[order] for c in codes]
    change = np.zeros(len(order), dtype=bool)
    change[:1] = True
    for c in sorted_codes:
        change[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(change)
    out = {key: (c[starts] if lab is None else lab[c[starts]]) for key, c, lab in zip(keys, sorted_codes, labels,
                                                                                    strict=True)}
    for col in _COUNTS:
        values = frame[col].to_numpy(np.int64)[order]
        out[col] = np.add.reduceat(values, starts) if len(starts) else values
    return pd.DataFrame(out)


def score_counts(samples: pd.DataFrame, score: str, label: str = "click") -> pd.DataFrame:
    """Rows (``n``) and ``positives`` per (day, bucket, score) of the rows where ``score`` is set."""
    rows = samples.loc[samples[score].notna().to_numpy()]
    frame = pd.DataFrame({"day": rows["day"].to_numpy(np.int64),
                          "bucket": rows["bucket"].astype(str).to_numpy(dtype=object) if "bucket" in rows.columns
                          else np.full(len(rows), NO_BUCKET, dtype=object),
                          "score": rows[score].to_numpy(np.float64),
                          "n": np.ones(len(rows), dtype=np.int64), "positives": rows[label].to_numpy(np.int64)})
    return _counted(frame, _CELL)


def reduce_score_counts(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The sum of partial :func:`score_counts` tables."""
    return _counted(pd.concat(list(parts), ignore_index=True), _CELL) if len(parts) != 1 else parts[0]


def user_score_counts(samples: pd.DataFrame, score: str, label: str = "click") -> pd.DataFrame:
    """Rows and positives per (user, score) of the rows where ``score`` is set."""
    rows = samples.loc[samples[score].notna().to_numpy()]
    frame = pd.DataFrame({"user_id": rows["user_id"].to_numpy(), "score": rows[score].to_numpy(np.float64),
                          "n": np.ones(len(rows), dtype=np.int64), "positives": rows[label].to_numpy(np.int64)})
    return _counted(frame, ["user_id", "score"])


def reduce_user_counts(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The sum of partial :func:`user_score_counts` tables."""
    return _counted(pd.concat(list(parts), ignore_index=True), ["user_id", "score"])


def user_aucs(counts: pd.DataFrame) -> pd.DataFrame:
    """One row per user of a (user, score) count table sorted by user then score: ``n``,
    ``positives`` and ``twice_u`` (twice the Mann-Whitney U of the user's rows)."""
    codes, users = pd.factorize(counts["user_id"], sort=False)
    pos = counts["positives"].to_numpy(np.int64)
    neg = counts["n"].to_numpy(np.int64) - pos
    per_user = counts.groupby(codes, sort=True)[_COUNTS].sum()
    return pd.DataFrame({"user_id": np.asarray(users), "n": per_user["n"].to_numpy(np.int64),
                         "positives": per_user["positives"].to_numpy(np.int64),
                         "twice_u": group_twice_u_counts(codes, pos, neg)})


def gauc_entry(users: pd.DataFrame) -> dict:
    """The exposure-weighted GAUC of per-user rows (:func:`user_aucs`)."""
    n, pos = users["n"].to_numpy(np.int64), users["positives"].to_numpy(np.int64)
    neg = n - pos
    used = (pos > 0) & (neg > 0)
    if used.any():
        auc = users["twice_u"].to_numpy(np.int64)[used] / (2.0 * pos[used] * neg[used])
        value = math.fsum(n[used] * auc) / float(n[used].sum())
    else:
        value = float("nan")
    return {"gauc": value, "users_used": int(used.sum()), "users_skipped_one_class": int((~used).sum()),
            "weight": "exposures"}


def _by_score(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (ascending) of ``cells`` with their rows and positives."""
    by = _counted(cells[["score", *_COUNTS]], ["score"])
    return by["score"].to_numpy(np.float64), by["n"].to_numpy(np.int64), by["positives"].to_numpy(np.int64)


def _auc(cells: pd.DataFrame) -> float:
    _, n, pos = _by_score(cells)
    return auc_counts(pos, n - pos)


def _segments(cells: pd.DataFrame) -> list[tuple[str, str, object]]:
    """(segment, value as shown, key) of the AUC table: all, each day, each bucket."""
    if len(cells) == 0:
        return []
    days = sorted(int(d) for d in pd.unique(cells["day"]))
    buckets = sorted({str(b) for b in pd.unique(cells["bucket"])} - {NO_BUCKET})
    return [("all", "all", None), *[("day", format_day(d), d) for d in days],
            *[("bucket", b, b) for b in buckets]]


def auc_rows(sides: dict[str, pd.DataFrame], counts: pd.DataFrame | None = None) -> pd.DataFrame:
    """The AUC table of :func:`eval.online_offline.auc_table` from per-side count tables of the
    same rows (``online_auc`` / ``offline_auc`` by the key of ``sides``; a side absent is NaN).

    ``n`` and ``positives`` are those of the first side, else of ``counts`` (rows per day and
    bucket with ``n`` and ``positives``: the exposures when there is no score).
    """
    first = next(iter(sides.values()), counts if counts is not None else pd.DataFrame(columns=[*_CELL, *_COUNTS]))
    out: list[dict] = []
    for segment, value, key in _segments(first):
        def part(cells: pd.DataFrame, segment: str = segment, key: object = key) -> pd.DataFrame:
            return cells if segment == "all" else cells.loc[(cells[segment] == key).to_numpy()]
        rows = part(first)
        rec: dict = {"segment": segment, "value": value, "n": int(rows["n"].sum()),
                     "positives": int(rows["positives"].sum())}
        for side in ("online_auc", "offline_auc"):
            rec[side] = _auc(part(sides[side])) if side in sides else float("nan")
        rec["gap"] = rec["offline_auc"] - rec["online_auc"]
        out.append(rec)
    return pd.DataFrame(out, columns=["segment", "value", "n", "positives", "online_auc", "offline_auc", "gap"])


def calibration_section(cells: pd.DataFrame, name: str) -> dict:
    """The calibration section of the readout from a score count table of predicted probabilities."""
    p, count, pos = _by_score(cells)
    total, clicks = int(count.sum()), int(pos.sum())
    table = calibration_table_counts(p, count, pos, n_bins=10)
    gap = (table["mean_predicted"] - table["actual_rate"]).abs().to_numpy()
    mean_p, rate = float(np.dot(p, count) / total), clicks / total
    out = {"score": name, "n": total, "mean_predicted": mean_p, "actual_rate": rate,
           "predicted_over_actual": mean_p / rate if rate > 0 else None,
           "ece": float(np.dot(table["count"].to_numpy(), gap) / table["count"].sum()), "table": records(table)}
    clipped = np.clip(p, _CLIP, 1 - _CLIP)
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = -float(np.dot(pos, np.log(clipped)) + np.dot(count - pos, np.log1p(-clipped))) / total
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
