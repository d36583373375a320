"""Offline vs online AUC on the same rows, per day and per bucket (seed 004).

Online AUC uses the production ranker's logged ``rank_score``; offline AUC uses a bundle's
scores of the same exposures. Rows where either score is missing are left out of both, so
the two numbers and their gap are always about the same rows.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from eval.metrics import auc, gauc
from ltr.logs import format_day

__all__ = ["auc_table", "gauc_summary"]


def _safe_auc(y: np.ndarray, s: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return auc(y, s) if len(y) else float("nan")


def auc_table(samples: pd.DataFrame, online: str | None = "rank_score", offline: str | None = None,
              label: str = "click") -> pd.DataFrame:
    """AUC of the online and offline scores per day, per bucket and overall.

    Parameters
    ----------
    samples : DataFrame
        Exposure-level samples with ``day``, ``label`` and the score columns; ``bucket``
        optional.
    online, offline : str or None
        Score columns (None or absent: that side is NaN).
    label : str, default "click"

    Returns
    -------
    DataFrame
        Columns ``segment`` ("day" / "bucket" / "all"), ``value``, ``n``, ``positives``,
        ``online_auc``, ``offline_auc``, ``gap`` (offline - online).
    """
    cols = [c for c in (online, offline) if c is not None and c in samples.columns]
    rows = samples.dropna(subset=cols) if cols else samples
    n = len(rows)
    # Group by integer codes and format only the distinct days: a per-row format_day costs
    # seconds on a million exposures.
    segments = [("all", np.zeros(n, dtype=np.int64), ["all"] if n else [])]
    if "day" in rows.columns:
        codes, days = pd.factorize(rows["day"], sort=True)
        segments.append(("day", codes, [format_day(int(d)) for d in days]))
    if "bucket" in rows.columns:
        codes, buckets = pd.factorize(rows["bucket"].astype(str), sort=True)
        segments.append(("bucket", codes, [str(b) for b in buckets]))
    y_all = rows[label].to_numpy()
    scores = {side: rows[col].to_numpy() for side, col in (("online_auc", online), ("offline_auc", offline))
              if col in cols}
    out = []
    for segment, codes, values in segments:
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(values) + 1))
        for j, value in enumerate(values):
            pos = order[bounds[j]:bounds[j + 1]]
            y = y_all[pos]
            rec: dict[str, Any] = {"segment": segment, "value": value, "n": len(pos), "positives": int(y.sum())}
            for side in ("online_auc", "offline_auc"):
                rec[side] = _safe_auc(y, scores[side][pos]) if side in scores else float("nan")
            rec["gap"] = rec["offline_auc"] - rec["online_auc"]
            out.append(rec)
    return pd.DataFrame(out, columns=["segment", "value", "n", "positives", "online_auc", "offline_auc", "gap"])


def gauc_summary(samples: pd.DataFrame, scores: dict[str, str | None], label: str = "click") -> dict:
    """Exposure-weighted per-user GAUC for each named score column present in ``samples``."""
    out = {}
    for name, col in scores.items():
        if col is None or col not in samples.columns:
            continue
        rows = samples.dropna(subset=[col])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = gauc(rows[label].to_numpy(), rows[col].to_numpy(), rows["user_id"].to_numpy())
        out[name] = {"gauc": float(result.value), "users_used": int(result.n_groups_used),
                     "users_skipped_one_class": int(result.n_groups_skipped), "weight": result.weight}
    return out
