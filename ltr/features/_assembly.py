"""How a :class:`~ltr.features.FeatureBuilder`'s fitted state becomes feature blocks, and its state format.

The builder orchestrates; these functions read its parameters and fitted attributes
(``plan_``, ``priors_``, ``encoders_``, ``freeze_end_`` ...) and return the blocks in output
order (continuous: counting, recency, item attributes, recent-click cosine; categorical:
context, item, user, ids), or export and restore the fitted attributes.
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ltr._validation import check_int
from ltr.features._attributes import AttributeTable, ItemAttributeValues
from ltr.features._binning import BinCollapseWarning, QuantileBinner
from ltr.features._blocks import CategoricalBlock, ContinuousBlock
from ltr.features._categories import AttributeCategories, ContextCategories, IdCategories
from ltr.features._counting import ClickRecency, WindowedCounts
from ltr.features._day_tables import DayTableCache, outcome_count, outcome_sum
from ltr.features._encoding import CategoryEncoder
from ltr.features._frame import prepare_frame
from ltr.features._matrix import FeatureMatrix
from ltr.features._params import params_to_state
from ltr.features._plan import FeaturePlan, user_side
from ltr.features._recent_clicks import RecentClickCosine
from ltr.features._smoothing import BetaPrior
from ltr.features._space import FeatureSpace
from ltr.features._state import export_state, import_state
from ltr.features._tables import HistoryTables, build_tables

__all__ = ["categorical_blocks", "categorical_frames", "continuous_blocks", "count_tables", "export_builder",
           "fit_binner", "fit_categorical", "outcome_families", "prepare", "refreshed_copy", "restore_builder",
           "transform_rows"]


def categorical_frames(self: Any, frame: Mapping[str, np.ndarray]) -> dict[str, tuple[pd.DataFrame, int]]:
    """Per categorical group, the training columns its encoder is fitted on and its minimum count."""
    plan = self.plan_
    out: dict[str, tuple[pd.DataFrame, int]] = {}
    if plan.context:
        out["context"] = (ContextCategories.training_frame(frame, plan.context), int(self.min_count))
    for group, table, names in (("item", self.items_, plan.item), ("user", self.users_, plan.user)):
        if names and table is not None:
            out[group] = (AttributeCategories.training_frame(frame, table, group, names), int(self.min_count))
    if plan.ids:
        out["ids"] = (IdCategories.training_frame(frame, plan.ids, self.items_), int(self.id_min_count))
    return out


def fit_categorical(self: Any, frame: Mapping[str, np.ndarray]) -> tuple[CategoricalBlock, ...]:
    """Fit the categorical blocks (context, item, user) on the training rows."""
    plan = self.plan_
    blocks: list[CategoricalBlock] = []
    if plan.context:
        blocks.append(ContextCategories.fit(frame, plan.context, self.min_count))
    for group, table, names in (("item", self.items_, plan.item), ("user", self.users_, plan.user)):
        if names and table is not None:
            blocks.append(AttributeCategories.fit(frame, table, group, names, self.min_count))
    if plan.ids:
        blocks.append(IdCategories.fit(frame, plan.ids, self.items_, int(self.id_min_count)))
    return tuple(blocks)


def continuous_blocks(self: Any) -> tuple[ContinuousBlock, ...]:
    """The continuous feature blocks, in output order."""
    plan = self.plan_
    windows = tuple(int(w) for w in self.windows) + ((0,) if self.all_history else ())
    frozen = dict.fromkeys(plan.frozen, self.freeze_end_)
    outcomes = {family: tuple(self.outcomes) for family in outcome_families(self)}
    blocks: list[ContinuousBlock] = [WindowedCounts(plan.families, windows, self.priors_, frozen, outcomes)]
    if self.recency:
        attrs = set(plan.key_attributes)
        crossed = tuple(f for f, cols in plan.families.items() if "user_id" in cols and not user_side(cols, attrs))
        if crossed:
            blocks.append(ClickRecency(crossed, frozen))
    if self.items_ is not None:
        blocks.append(ItemAttributeValues(self.items_, tuple(k.split("_", 1)[1] for k in plan.item_keys)))
        if self.items_.embedding is not None:
            blocks.append(RecentClickCosine(self.items_.embedding, int(self.history_len)))
    return tuple(blocks)


def outcome_families(self: Any) -> list[str]:
    """Families reporting outcome means (none without outcomes)."""
    if not self.outcomes:
        return []
    families = self.plan_.families
    if self.outcome_families is not None:
        unknown = [f for f in self.outcome_families if f not in families]
        if unknown:
            raise ValueError(f"outcome_families must be families in use {list(families)}. Got {unknown} instead.")
        return list(self.outcome_families)
    return [f for f in families if f in ("item", "user") or f in self.plan_.item_keys]


def categorical_blocks(self: Any) -> tuple[CategoricalBlock, ...]:
    """The categorical blocks of the fitted encoders, in output order (context, item, user)."""
    plan = self.plan_
    blocks: list[CategoricalBlock] = []
    if "context" in self.encoders_:
        blocks.append(ContextCategories(plan.context, self.encoders_["context"]))
    for group, table, names in (("item", self.items_, plan.item), ("user", self.users_, plan.user)):
        if group in self.encoders_ and table is not None:
            blocks.append(AttributeCategories.from_encoder(self.encoders_[group], table, group, names))
    if "ids" in self.encoders_:
        blocks.append(IdCategories(plan.ids, self.encoders_["ids"], self.items_))
    return tuple(blocks)


def export_builder(self: Any, fmt: str, version: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``FeatureBuilder.to_state`` of a fitted builder."""
    arrays: dict[str, np.ndarray] = {}
    families = list(self.plan_.families)
    meta = {
        "format": fmt,
        "version": version,
        "params": params_to_state(self.get_params()),
        "plan": export_state(self.plan_, "plan.", arrays),
        "tables": export_state(self.tables_, "tables.", arrays),
        "items": None if self.items_ is None else export_state(self.items_, "items.", arrays),
        "users": None if self.users_ is None else export_state(self.users_, "users.", arrays),
        "priors": {f: export_state(self.priors_[f], f"priors.{i}.", arrays) for i, f in enumerate(families)},
        "binner": export_state(self.binner_, "binner.", arrays),
        "encoders": {g: export_state(e, f"encoders.{g}.", arrays) for g, e in self.encoders_.items()},
        "space": export_state(self.space_, "space.", arrays),
        "continuous_names": list(self.continuous_names_),
        "binned_names": list(self.binned_names_),
        "stats_end": int(self.stats_end_),
        "freeze_end": int(self.freeze_end_),
    }
    return meta, arrays


def restore_builder(self: Any, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Set a builder's learned attributes from ``export_builder`` output (all but the layout)."""
    self.plan_ = import_state(FeaturePlan, meta["plan"], "plan.", arrays)
    families = list(self.plan_.families)
    self.tables_ = import_state(HistoryTables, meta["tables"], "tables.", arrays)
    self.items_ = None if meta["items"] is None else import_state(AttributeTable, meta["items"], "items.", arrays)
    self.users_ = None if meta["users"] is None else import_state(AttributeTable, meta["users"], "users.", arrays)
    priors = meta["priors"]
    self.priors_ = {f: import_state(BetaPrior, priors[f], f"priors.{i}.", arrays) for i, f in enumerate(families)}
    self.binner_ = import_state(QuantileBinner, meta["binner"], "binner.", arrays)
    encoders = meta["encoders"]
    self.encoders_ = {g: import_state(CategoryEncoder, encoders[g], f"encoders.{g}.", arrays) for g in encoders}
    self.space_ = import_state(FeatureSpace, meta["space"], "space.", arrays)
    self.continuous_names_ = list(meta["continuous_names"])
    self.binned_names_ = list(meta["binned_names"])
    self.stats_end_ = int(meta["stats_end"])
    self.freeze_end_ = int(meta["freeze_end"])


def fit_binner(self: Any, columns: Sequence[np.ndarray]) -> None:
    """Fit ``binner_`` (and ``binned_names_``) on the training rows' continuous columns."""
    names = self.continuous_names_
    keep = [j for j, col in enumerate(columns) if not np.isnan(col).all()]
    self.binned_names_ = [names[j] for j in keep]
    binned = pd.DataFrame({names[j]: columns[j] for j in keep})
    with warnings.catch_warnings():
        # Count features are mostly zero, so collapsed edges are the norm, not news;
        # binner_.collapsed_edges_ keeps the record.
        warnings.simplefilter("ignore", BinCollapseWarning)
        self.binner_ = QuantileBinner(n_bins=self.n_bins).fit(binned)


def prepare(self: Any, samples: Any, name: str, labels: bool, context: bool = True) -> dict[str, np.ndarray]:
    """:func:`prepare_frame` with a fitted builder's plan, tables and parameters."""
    return prepare_frame(samples, name, plan=self.plan_, items=self.items_, users=self.users_, tz=self.tz,
                         default_position=int(self.default_position), labels=labels, context=context,
                         outcomes=tuple(self.outcomes) if labels else ())


def transform_rows(self: Any, samples: Any, history: pd.DataFrame | None, cache: DayTableCache | None, *,
                   dense: bool, onehot: bool, chunk_size: int) -> FeatureMatrix:
    """``FeatureBuilder.transform`` after its argument checks."""
    frame = prepare(self, samples, "samples", labels=False)
    if history is None and cache is not None and self.lag_seconds is None:
        # One serving request: item columns from the cache's per-day item table.
        n_items = 0 if self.items_ is None else int(self.items_.ids.size)
        request = self._request_.assemble(frame, self.tables_, cache, dense, onehot, n_items)
        if request is not None:
            return request
    if history is None:
        tables = self.tables_
    else:
        tables = count_tables(self, prepare(self, history, "history", labels=True, context=False))
    if self.lag_seconds is not None:
        cache = None  # per-day tables serve day cut-offs only
    elif history is not None or cache is None:
        # Tables of a history frame live for this call, and so do their per-day tables.
        cache = DayTableCache.for_rows(frame["day"])
    return self._layout_.assemble(frame, tables, cache, dense, chunk_size, onehot=onehot)


def count_tables(self: Any, frame: Mapping[str, np.ndarray], clicks: bool = True) -> HistoryTables:
    """The counting tables (with outcome sums) and click history (unless not ``clicks``) of a
    prepared labelled frame."""
    embedding = self.items_.embedding if self.items_ is not None and clicks else None
    sums = [name for outcome in self.outcomes for name in (outcome_sum(outcome), outcome_count(outcome))]
    summed = dict.fromkeys(outcome_families(self), sums)
    time_column = "day" if self.lag_seconds is None else "ts"
    return build_tables(frame, self.plan_.families, time_column, embedding, summed)


def refreshed_copy(self: Any, history: pd.DataFrame, through: int) -> Any:
    """``FeatureBuilder.refreshed``: a shallow copy with tables counted from ``history`` up to ``through``."""
    check_is_fitted(self, "space_")
    if self.lag_seconds is not None:
        raise ValueError(f"lag_seconds must be None to refresh by days. Got {self.lag_seconds} instead.")
    through = check_int(through, "through")
    frame = prepare(self, history, "history", labels=True, context=False)
    keep = frame["day"] <= through
    if not keep.any():
        raise ValueError(f"history must hold rows on or before day {through}. Got none instead.")
    new = copy.copy(self)
    new.tables_ = count_tables(self, {name: values[keep] for name, values in frame.items()})
    new.stats_end_ = through + 1
    return new
