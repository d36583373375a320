"""Per-feature contributions as a long table: the explainer's output shape.

:meth:`ltr.serving.Ranker.explain` and ``python -m ltr.explain`` both report through
:func:`top_contributions`; it lives apart from both so the scorer does not import the
command line.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit

__all__ = ["COLUMNS", "top_contributions"]

#: Columns of :func:`top_contributions`.
COLUMNS = ["row", "request_id", "item_id", "rank", "feature", "value", "contribution", "bias", "logit", "score"]


def top_contributions(frame: pd.DataFrame, X: Any, contributions: np.ndarray, names: Sequence[str],
                      top: int) -> pd.DataFrame:
    """Long table of the ``top`` largest absolute contributions per row.

    Parameters
    ----------
    frame : DataFrame
        The explained rows (request_id and item_id are copied when present).
    X : sparse matrix or ndarray of shape (n, p)
        Model inputs (for the ``value`` column).
    contributions : ndarray of shape (n, p + 1)
        Last column is the bias.
    names : sequence of str, length p
    top : int

    Returns
    -------
    DataFrame
        Columns ``row, request_id, item_id, rank, feature, value, contribution, bias, logit,
        score``; sorted by row then rank. Zero contributions are left out.
    """
    n, width = contributions.shape
    p = width - 1
    per_feature = contributions[:, :p]
    k = min(int(top), p)
    # Stable sort on -|c| keeps ties in feature order, so the output is deterministic.
    order = np.argsort(-np.abs(per_feature), axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(n), k)
    cols = order.ravel()
    values = per_feature[rows, cols]
    dense = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    logit = contributions.sum(axis=1)
    out = pd.DataFrame({
        "row": rows,
        "request_id": frame["request_id"].to_numpy()[rows] if "request_id" in frame else pd.NA,
        "item_id": frame["item_id"].to_numpy()[rows] if "item_id" in frame else pd.NA,
        "rank": np.tile(np.arange(1, k + 1), n),
        "feature": np.asarray(list(names), dtype=object)[cols],
        "value": dense[rows, cols],
        "contribution": values,
        "bias": contributions[rows, p],
        "logit": logit[rows],
        "score": expit(logit)[rows],
    }, columns=COLUMNS)
    return out.loc[values != 0].reset_index(drop=True)
