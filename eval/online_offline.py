"""Offline vs online AUC on the same rows, per day and per bucket (seed 004), and GAUC.

Online AUC uses the production ranker's logged ``rank_score``; offline AUC uses a bundle's
scores of the same exposures. Rows where either score is missing are left out of both, so
the two numbers and their gap are always about the same rows.

Everything is computed from counts that add up over partitions of the rows (what the readout's
Dask engine sums on its workers):

* :func:`score_counts`: rows and clicks per (day, bucket, score value), summed by
  :func:`reduce_score_counts` (integers, exact); :func:`auc_rows` gives the exact AUC of each
  segment from them (half credit for ties);
* :func:`user_score_counts` and :func:`user_aucs`: rows and clicks per (user, score value),
  reduced to one row per user (rows, clicks, twice the Mann-Whitney U); :func:`gauc_entry`
  averages the users' AUCs weighted by exposures with a correctly rounded sum
  (:func:`math.fsum`), so the order the users come in does not matter.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from eval.ab import NO_BUCKET
from ltr.logs import format_day
from ltr.metrics._auc_kernels import auc_counts, group_twice_u_counts

__all__ = ["auc_rows", "auc_table", "gauc_entry", "gauc_summary", "reduce_score_counts", "reduce_user_counts",
           "score_counts", "score_totals", "user_aucs", "user_score_counts"]


_CELL = ["day", "bucket", "score"]
_COUNTS = ["n", "positives"]


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
    """Rows (``n``) and ``positives`` per (day, bucket, score) of the rows where ``score`` is set
    (day 0 without a ``day`` column, :data:`eval.ab.NO_BUCKET` without a ``bucket`` one)."""
    rows = samples.loc[samples[score].notna().to_numpy()]
    frame = pd.DataFrame({"day": rows["day"].to_numpy(np.int64) if "day" in rows.columns
                          else np.zeros(len(rows), dtype=np.int64),
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


def score_totals(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (ascending) of ``cells`` with their rows and positives."""
    by = _counted(cells[["score", *_COUNTS]], ["score"])
    return by["score"].to_numpy(np.float64), by["n"].to_numpy(np.int64), by["positives"].to_numpy(np.int64)


def _auc(cells: pd.DataFrame) -> float:
    _, n, pos = score_totals(cells)
    return auc_counts(pos, n - pos)


def _segments(cells: pd.DataFrame, by: Sequence[str]) -> list[tuple[str, str, object]]:
    """(segment, value as shown, key) of the AUC table: all, each day, each bucket (of ``by``)."""
    if len(cells) == 0:
        return []
    days = sorted(int(d) for d in pd.unique(cells["day"])) if "day" in by else []
    buckets = sorted({str(b) for b in pd.unique(cells["bucket"])} - {NO_BUCKET}) if "bucket" in by else []
    return [("all", "all", None), *[("day", format_day(d), d) for d in days],
            *[("bucket", b, b) for b in buckets]]


def auc_rows(sides: dict[str, pd.DataFrame], counts: pd.DataFrame | None = None,
             by: Sequence[str] = ("day", "bucket")) -> pd.DataFrame:
    """The AUC table of :func:`eval.online_offline.auc_table` from per-side count tables of the
    same rows (``online_auc`` / ``offline_auc`` by the key of ``sides``; a side absent is NaN).

    ``n`` and ``positives`` are those of the first side, else of ``counts`` (rows per day and
    bucket with ``n`` and ``positives``: the exposures when there is no score); ``by`` the
    segments besides "all".
    """
    first = next(iter(sides.values()), counts if counts is not None else pd.DataFrame(columns=[*_CELL, *_COUNTS]))
    out: list[dict] = []
    for segment, value, key in _segments(first, by):
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


def auc_table(samples: pd.DataFrame, online: str | None = "rank_score", offline: str | None = None,
              label: str = "click") -> pd.DataFrame:
    """AUC of the online and offline scores per day, per bucket and overall.

    Parameters
    ----------
    samples : DataFrame
        Exposure-level samples with ``label`` and the score columns; ``day`` and ``bucket``
        optional (their segments then absent).
    online, offline : str or None
        Score columns (None or absent: that side is NaN).
    label : str, default "click"

    Returns
    -------
    DataFrame
        Columns ``segment`` ("day" / "bucket" / "all"), ``value``, ``n``, ``positives``,
        ``online_auc``, ``offline_auc``, ``gap`` (offline - online), from the counts per
        score value of the rows both scores have (:func:`auc_rows`).
    """
    cols = [c for c in (online, offline) if c is not None and c in samples.columns]
    rows = samples.dropna(subset=cols) if cols else samples
    sides = {side: score_counts(rows, col, label) for side, col in (("online_auc", online), ("offline_auc", offline))
             if col in cols}
    counts = None if sides else score_counts(rows.assign(_all=0.0), "_all", label)
    return auc_rows(sides, counts, by=[c for c in ("day", "bucket") if c in rows.columns])


def gauc_summary(samples: pd.DataFrame, scores: dict[str, str | None], label: str = "click") -> dict:
    """Exposure-weighted per-user GAUC for each named score column present in ``samples``."""
    return {name: gauc_entry(user_aucs(user_score_counts(samples, col, label)))
            for name, col in scores.items() if col is not None and col in samples.columns}
