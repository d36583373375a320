"""Labelled samples of a log directory: what features are fitted on and counted from.

:func:`labelled_samples` is the one way ``ltr.train``, ``ltr.score``, ``ltr.refresh`` and
``ltr.explain`` turn logs into exposure-level rows: :func:`ltr.logs.join_samples`, calendar
days in the logs' time zone, and the outcomes of each exposure (watch ratio, likes ...) as
``outcome_<name>`` columns. Outcomes are labels: the features count them point-in-time (rows
of earlier days only) and never read a row's own; they are never context features.
"""
from __future__ import annotations

import pandas as pd

from ltr.logs import Logs, day_index, join_samples

__all__ = ["OUTCOME_PREFIX", "labelled_samples", "outcome_columns", "with_days_and_outcomes"]

#: Prefix of the outcome columns :func:`labelled_samples` attaches.
OUTCOME_PREFIX = "outcome_"


def outcome_columns(samples: pd.DataFrame) -> tuple[str, ...]:
    """The outcome columns of a :func:`labelled_samples` frame."""
    return tuple(str(c) for c in samples.columns if str(c).startswith(OUTCOME_PREFIX))


def labelled_samples(logs: Logs, tz: str = "UTC") -> pd.DataFrame:
    """Joined samples with days in ``tz`` and the outcomes of each exposure.

    Parameters
    ----------
    logs : ltr.logs.Logs
    tz : str, default "UTC"
        Time zone of the ``day`` column.

    Returns
    -------
    samples : pandas.DataFrame
        ``join_samples(logs).samples`` with ``day`` in ``tz`` and, when the logs have an
        outcomes table, one ``outcome_<name>`` column per outcome (missing where an exposure
        has none; the first outcome row of a repeated exposure).
    """
    return with_days_and_outcomes(join_samples(logs).samples, logs.outcomes, tz)


def with_days_and_outcomes(samples: pd.DataFrame, outcomes: pd.DataFrame | None, tz: str = "UTC") -> pd.DataFrame:
    """Joined samples with days in ``tz`` and the ``outcomes`` table's outcome columns attached.

    What :func:`labelled_samples` adds to ``join_samples(logs).samples``; the Dask engine
    applies it to each partition's samples and outcomes (an exposure's outcomes live in its
    request's partition).
    """
    if tz != "UTC":
        samples = samples.assign(day=day_index(samples["ts"].to_numpy(), tz))
    if outcomes is None or len(outcomes.columns) <= 3:
        return samples
    values = [c for c in outcomes.columns if c not in ("request_id", "item_id", "ts")]
    table = outcomes.drop_duplicates(["request_id", "item_id"])[["request_id", "item_id", *values]]
    table = table.rename(columns={c: f"{OUTCOME_PREFIX}{c}" for c in values})
    merged = samples.merge(table, on=["request_id", "item_id"], how="left", validate="many_to_one")
    merged.index = samples.index
    return merged
