"""The prepared frame: the columns every feature block reads, as 1-D numpy arrays.

From a samples or serving frame, :func:`prepare_frame` derives what the blocks need once
per call: ids and ``ts``; the calendar ``day`` (the frame's own column, else from ``ts`` in
the builder's time zone); the ``hour``; the ``position`` (``default_position`` where
missing: serving scores candidates as if shown first); the labels of history frames; the
row of each item and user in the attribute tables (``_item_row``, ``_user_row``, -1 when
unknown); attribute values used as counting keys (as float codes, a missing attribute or an
id absent from its table as the level ``MISSING_KEY``); and the context and key columns of
the plan (None where the frame lacks one: the missing level).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ltr._validation import check_frame
from ltr.features._attributes import AttributeTable
from ltr.features._day_tables import OUTCOME_SCALE, outcome_count, outcome_sum
from ltr.features._plan import REQUIRED, FeaturePlan
from ltr.logs import SECONDS_PER_DAY, local_seconds

__all__ = ["prepare_frame"]


def prepare_frame(
    samples: pd.DataFrame,
    name: str,
    *,
    plan: FeaturePlan,
    items: AttributeTable | None,
    users: AttributeTable | None,
    tz: str,
    default_position: int,
    labels: bool,
    context: bool = True,
    outcomes: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Columns the features read, as 1-D numpy arrays (ids raw, attributes as floats).

    Parameters
    ----------
    samples : pandas.DataFrame
        user_id, item_id, ts (int epoch seconds), optional day, position and context
        columns; with ``labels`` also click (and optionally order).
    name : str
        What ``samples`` is called in error messages ("samples", "history").
    plan : FeaturePlan
        Families and columns in use.
    items, users : AttributeTable or None
        The fitted attribute tables.
    tz : str
        Time zone of ``hour`` and of ``day`` when the frame has none.
    default_position : int
        Position of rows without one.
    labels : bool
        Read ``click`` and ``order`` (history and training frames).
    context : bool, default=True
        False (history frames: only counted) leaves out the context columns that are no
        counting key.
    outcomes : sequence of str, default=()
        With ``labels``: outcome columns of the frame, read as fixed-point sums and known
        counts (``outcome_sum``/``outcome_count`` names) for the counting tables.

    Returns
    -------
    frame : dict of str -> ndarray
    """
    check_frame(samples, name, REQUIRED + (("click",) if labels else ()))
    ts = samples["ts"].to_numpy()
    if ts.dtype.kind not in "iu":
        raise TypeError(f"{name}.ts must be int64 epoch seconds. Got dtype {samples['ts'].dtype} instead.")
    n = len(samples)
    ts = ts.astype(np.int64)
    out: dict[str, np.ndarray] = {
        "user_id": samples["user_id"].to_numpy(),
        "item_id": samples["item_id"].to_numpy(),
        "ts": ts,
    }
    # The local wall clock once for both the day and the hour (one time-zone conversion).
    local = local_seconds(ts, tz)
    out["day"] = (
        samples["day"].to_numpy().astype(np.int64) if "day" in samples.columns else local // SECONDS_PER_DAY
    )
    out["hour"] = (local % SECONDS_PER_DAY) // 3600
    if "position" in samples.columns:
        pos = samples["position"].to_numpy(dtype=np.float64, na_value=np.nan)
        out["position"] = np.where(np.isnan(pos), float(default_position), pos)
    else:
        out["position"] = np.full(n, float(default_position))
    if labels:
        out["click"] = samples["click"].to_numpy().astype(np.int64)
        has_order = "order" in samples.columns
        out["order"] = samples["order"].to_numpy().astype(np.int64) if has_order else np.zeros(n, np.int64)
        for name in outcomes:
            if name not in samples.columns:
                raise ValueError(
                    f"{name} must have the outcome column {name!r} the features were fitted with. "
                    f"Got columns {sorted(map(str, samples.columns))} instead."
                )
            values = samples[name].to_numpy(dtype=np.float64, na_value=np.nan)
            known = np.isfinite(values)
            out[outcome_sum(name)] = np.where(known, np.rint(values * OUTCOME_SCALE), 0).astype(np.int64)
            out[outcome_count(name)] = known.astype(np.int64)
    out["_item_row"] = items.lookup(out["item_id"]) if items is not None else np.full(n, -1, np.int64)
    out["_user_row"] = users.lookup(out["user_id"]) if users is not None else np.full(n, -1, np.int64)
    for col in plan.key_attributes:
        source, attribute = col.split("_", 1)
        table = items if source == "item" else users
        if table is None:
            raise ValueError(f"plan.key_attributes must come from a fitted table. Got {col!r} without one instead.")
        out[col] = table.take_key(attribute, out[f"_{source}_row"])
    keys = plan.key_columns
    for col in plan.input_columns:
        if col not in out and (context or col in keys):
            out[col] = samples[col].to_numpy() if col in samples.columns else np.full(n, None, dtype=object)
    return out
