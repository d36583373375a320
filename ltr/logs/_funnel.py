"""Per-bucket funnel counts from logs alone: requests -> candidates -> exposures -> clicks -> orders."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ltr.logs._contract import Logs

__all__ = ["bucket_funnel"]


def bucket_funnel(logs: Logs, samples: pd.DataFrame) -> pd.DataFrame:
    """Funnel counts and rates per A/B bucket (one row ``all`` when requests have no bucket).

    Parameters
    ----------
    logs : Logs
        The validated logs (for requests and candidates).
    samples : DataFrame
        Output of :func:`ltr.join_samples` (``samples`` attribute).

    Returns
    -------
    DataFrame
        Indexed by bucket, plus a final ``all`` row: ``users, requests, candidates,
        exposures, clicks, orders`` (counts; clicks and orders are labelled samples),
        ``candidates_per_request, exposures_per_request, ctr`` (clicks / exposures) and
        ``cvr`` (orders / clicks).
    """
    requests = logs.requests
    bucket = requests["bucket"] if "bucket" in requests.columns else pd.Series("all", index=requests.index)
    bucket_of_request = pd.Series(bucket.to_numpy(), index=requests["request_id"].to_numpy())
    sample_bucket = samples["request_id"].map(bucket_of_request)

    out = pd.DataFrame({
        "users": requests.groupby(bucket)["user_id"].nunique(),
        "requests": bucket.value_counts(),
    })
    if logs.candidates is not None:
        # Candidates are often 100x the requests: count through integer codes, not string labels.
        codes, labels = pd.factorize(bucket, sort=True)
        request_code = pd.Index(requests["request_id"]).get_indexer(logs.candidates["request_id"])
        counts = np.bincount(codes[request_code], minlength=len(labels))
        out["candidates"] = pd.Series(counts, index=labels)
    grouped = samples.groupby(sample_bucket)
    out["exposures"] = grouped.size()
    out["clicks"] = grouped["click"].sum()
    out["orders"] = grouped["order"].sum()
    out = out.fillna(0).astype(np.int64).sort_index()
    if len(out) > 1:
        total = out.sum().to_frame("all").T
        total["users"] = requests["user_id"].nunique()
        out = pd.concat([out, total])
    out.index.name = "bucket"
    if "candidates" in out.columns:
        out["candidates_per_request"] = out["candidates"] / out["requests"].where(out["requests"] > 0)
    out["exposures_per_request"] = out["exposures"] / out["requests"].where(out["requests"] > 0)
    out["ctr"] = out["clicks"] / out["exposures"].where(out["exposures"] > 0)
    out["cvr"] = out["orders"] / out["clicks"].where(out["clicks"] > 0)
    return out
