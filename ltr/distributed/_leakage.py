"""``ltr.train --engine dask``'s leakage check: :func:`ltr.leakage.check_leakage` on the training
partitions held by the workers, without collecting the training set on the client.

Both checks look at rows drawn by their keys (:func:`ltr.leakage.row_keys`: the smallest keys,
in key order), a draw that does not depend on the rows' order, so the Dask engine looks at the
very rows the single-machine engine looks at:

* **univariate AUC**: the workers send their partitions' smallest keys, the client finds the
  ``univariate_rows``-th smallest of all, the workers send the rows up to it (at most 100,000
  rows and their ties), and the client computes their features with the fitted builder and the
  same AUCs, to the last bit;
* **perturbation**: the same days and the same rows of each day (the workers send their
  partitions' rows of that day with the smallest keys). The statistics before and after the
  scramble are counted on the workers (:func:`ltr.features._partial.refresh_from_parts`), the
  scramble (:func:`ltr.leakage.perturb_after`) applied to each partition with rows on or after
  the day, with a seed of its own: labels and outcomes are permuted within a partition rather
  than across all of them, so the number of rows that change can differ from the single-machine
  count; whether a feature changes does not (a feature counted from earlier days never changes,
  whatever the scramble of later ones).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ltr.distributed._parts import Parts, on_rows, task_prefix
from ltr.features import FeatureBuilder
from ltr.features._partial import refresh_from_parts
from ltr.leakage import (
    LeakageReport,
    changed_counts,
    check_options,
    leakage_report,
    perturb_after,
    perturbed_days,
    row_keys,
    smallest_keys,
    univariate_aucs,
)

__all__ = ["check_leakage_on_dask"]


def _smallest_of(frame: pd.DataFrame, seed: int, n: int) -> np.ndarray:
    """The partition's ``n`` smallest row keys (runs on a worker)."""
    keys = row_keys(frame, seed) if len(frame) else np.zeros(0, dtype=np.uint64)
    return np.partition(keys, n - 1)[:n] if keys.size > n else keys


def _rows_up_to(frame: pd.DataFrame, seed: int, cut: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The partition's rows whose key is at most ``cut``, and their keys."""
    keys = row_keys(frame, seed) if len(frame) else np.zeros(0, dtype=np.uint64)
    keep = keys <= np.uint64(cut)
    return frame.loc[keep], keys[keep]


def _day_rows(frame: pd.DataFrame, seed: int, day: int, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The partition's rows of ``day`` with the ``n`` smallest keys, and their keys."""
    rows = frame.loc[frame["day"].to_numpy() == day]
    keys = row_keys(rows, seed) if len(rows) else np.zeros(0, dtype=np.uint64)
    pick = smallest_keys(keys, rows["click"].to_numpy(), n)
    return rows.iloc[pick], keys[pick]


def _drawn(found: list[tuple[pd.DataFrame, np.ndarray]], n: int) -> pd.DataFrame:
    """The ``n`` rows with the smallest keys of the partitions' candidates, in key order."""
    rows = pd.concat([f[0] for f in found], ignore_index=True)
    keys = np.concatenate([f[1] for f in found]).astype(np.uint64)
    return rows.iloc[smallest_keys(keys, rows["click"].to_numpy(), n)].reset_index(drop=True)


def _perturbed(frame: pd.DataFrame, seed: int, day: int) -> pd.DataFrame:
    """``perturb_after`` of one partition (runs on a worker)."""
    return perturb_after(frame, day, seed)


def _univariate(train: Parts, builder: FeatureBuilder, n: int, seed: int) -> dict[str, float]:
    client = train.client
    smallest = np.concatenate(train.run(_smallest_of, seed, n)).astype(np.uint64)
    if not smallest.size:
        raise ValueError("training partitions must hold rows. Got 0 rows instead.")
    cut = int(np.partition(smallest, min(n, smallest.size) - 1)[min(n, smallest.size) - 1])
    rows = _drawn(client.gather(train.map(_rows_up_to, seed=seed, cut=cut)), n)
    features = builder.transform(rows, onehot=False)
    return univariate_aucs(features.dense, features.dense_names, rows["click"].to_numpy(), seed)


def _changed(train: Parts, facts: list[dict[str, Any]], builder: FeatureBuilder, end: int, rows: int, days: int,
             seed: int) -> dict[str, int]:
    client = train.client
    changed: dict[str, int] = {}
    all_days = np.array(sorted({d for f in facts for d in f["days"]}), dtype=np.int64)
    before_builder = None
    for day, scramble in perturbed_days(all_days, days, seed):
        found = client.gather(train.days(facts, day, day).map(_day_rows, seed=seed, day=day, n=rows))
        subset = _drawn(found, rows)
        if before_builder is None:
            before_builder = refresh_from_parts(builder, train.run, end)
        seeds = np.random.default_rng(scramble).integers(2**31, size=len(facts))
        late = [i for i, f in enumerate(facts) if max(f["days"]) >= day]
        futures = list(train.futures)
        # The training rows of each late partition, scrambled with the partition's own seed.
        for i, future in zip(late, client.map(on_rows, [train.futures[i] for i in late],
                                                 [int(seeds[i]) for i in late], apply=_perturbed, low=train.low,
                                                 high=train.high, day=day, pure=False,
                                                 key=task_prefix(_perturbed)), strict=True):
            futures[i] = future
        after_builder = refresh_from_parts(builder, train.with_futures(futures).run, end)
        before = before_builder.transform(subset, onehot=False)
        after = after_builder.transform(subset, onehot=False)
        for name, count in changed_counts(before.dense, after.dense, before.dense_names).items():
            changed[name] = changed.get(name, 0) + count
        del futures
    return changed


def check_leakage_on_dask(train: Parts, facts: list[dict[str, Any]], builder: FeatureBuilder, end: int, *,
                          allow: Sequence[str] = (), threshold: float = 0.95, rows: int = 2000, days: int = 2,
                          univariate_rows: int = 100_000, seed: int = 0) -> LeakageReport:
    """:func:`ltr.leakage.check_leakage` on training partitions held by the workers (see the module docstring).

    Parameters
    ----------
    train : Parts
        The training days' labelled samples, one frame per partition (the rows the
        single-machine engine passes as ``samples``).
    facts : list of dict
        The partitions' :func:`ltr.distributed._parts.part_facts` (rows per day), in the same order.
    builder : FeatureBuilder
        Fitted on those rows.
    end : int
        Last training day (day index).
    allow, threshold, rows, days, univariate_rows, seed
        As in :func:`ltr.leakage.check_leakage`.

    Returns
    -------
    report : LeakageReport

    Raises
    ------
    ltr.leakage.LeakageError
        A feature was flagged; the message names it.
    """
    threshold, rows, days, univariate_rows = check_options(threshold, rows, days, univariate_rows)
    if len(facts) != len(train.futures):
        raise ValueError(f"facts must describe every training partition ({len(train.futures)}). "
                         f"Got {len(facts)} instead.")
    univariate = _univariate(train, builder, univariate_rows, seed)
    changed = _changed(train, facts, builder, end, rows, days, seed)
    return leakage_report(univariate, changed, allow, threshold)
