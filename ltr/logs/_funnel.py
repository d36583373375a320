"""Per-bucket funnel counts from logs alone: requests -> candidates -> exposures -> clicks -> orders."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ltr.logs._contract import Logs

__all__ = ["bucket_funnel", "funnel_counts", "funnel_table"]


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

    Notes
    -----
    The counts add up over partitions of the logs (each request with its candidates and
    samples): :func:`funnel_counts` per partition, :func:`funnel_table` on all of them.
    """
    return funnel_table([funnel_counts(logs.requests, logs.candidates, samples)])


def funnel_counts(requests: pd.DataFrame, candidates: pd.DataFrame | None,
                  samples: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-bucket counts of requests, candidates, exposures, clicks, orders (indexed by bucket)
    and the distinct (bucket, user_id) pairs of ``requests``: what :func:`funnel_table` adds up."""
    bucket = requests["bucket"] if "bucket" in requests.columns else pd.Series("all", index=requests.index)
    bucket_of_request = pd.Series(bucket.to_numpy(), index=requests["request_id"].to_numpy())
    sample_bucket = samples["request_id"].map(bucket_of_request)
    counts = pd.DataFrame({"requests": bucket.value_counts()})
    if candidates is not None:
        # Candidates are often 100x the requests: count through integer codes, not string labels.
        codes, labels = pd.factorize(bucket, sort=True)
        request_code = pd.Index(requests["request_id"]).get_indexer(candidates["request_id"])
        counts["candidates"] = pd.Series(np.bincount(codes[request_code], minlength=len(labels)), index=labels)
    grouped = samples.groupby(sample_bucket)
    counts["exposures"] = grouped.size()
    counts["clicks"] = grouped["click"].sum()
    counts["orders"] = grouped["order"].sum()
    pairs = pd.DataFrame({"bucket": bucket.to_numpy(), "user_id": requests["user_id"].to_numpy()}).drop_duplicates()
    return counts.fillna(0).astype(np.int64), pairs


def funnel_table(parts: list[tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """The :func:`bucket_funnel` table of the :func:`funnel_counts` of one or more partitions."""
    counts = pd.concat([c for c, _ in parts]).groupby(level=0).sum()
    pairs = pd.concat([p for _, p in parts], ignore_index=True).drop_duplicates()
    out = pd.concat([pairs.groupby("bucket")["user_id"].nunique().rename("users"), counts], axis=1)
    out = out.fillna(0).astype(np.int64).sort_index()
    if len(out) > 1:
        total = out.sum().to_frame("all").T
        total["users"] = pairs["user_id"].nunique()
        out = pd.concat([out, total])
    out.index.name = "bucket"
    if "candidates" in out.columns:
        out["candidates_per_request"] = out["candidates"] / out["requests"].where(out["requests"] > 0)
    out["exposures_per_request"] = out["exposures"] / out["requests"].where(out["requests"] > 0)
    out["ctr"] = out["clicks"] / out["exposures"].where(out["exposures"] > 0)
    out["cvr"] = out["orders"] / out["clicks"].where(out["clicks"] > 0)
    return out
