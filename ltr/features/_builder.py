"""Point-in-time ranker features: windowed counts, smoothed CTR, bins, one-hot, cosine.

:class:`FeatureBuilder` turns an exposure-level samples frame (the output of
:func:`ltr.logs.join_samples`) or a serving frame (one request's candidates) into a
:class:`FeatureMatrix`: a CSR one-hot design matrix with feature names for the
logistic-regression baseline, and the raw continuous values for LightGBM. It orchestrates
feature blocks (``ltr/features/_blocks.py``): each block computes its columns from the
prepared frame (``_frame.py``) and the point-in-time tables (``_tables.py``); the builder
bins, encodes and assembles them.

Time orthogonality: every statistic of a sample on day ``d`` comes from rows on days
``< d`` (or, with ``lag_seconds``, from rows with ``ts < sample ts - lag_seconds``), both
for the counting tables and for the user's recent-click profile. Everything else the
features depend on (priors, bin edges, kept categories, item/user attributes) is frozen at
``fit``. Hence changing or deleting any history row on or after a sample's day never
changes that sample's features; ``tests/ltr/test_features.py`` checks it bit for bit.

The A/B ``bucket`` is never a feature: it is assigned per user, so a model that saw it
would learn the arm rather than the user, and scores would shift when the split changes.

Missing attributes are data: an item without a category, an item absent from the items
table and a user absent from the users table get the explicit missing level ``<nan>`` of
every attribute categorical, and the level ``MISSING_KEY`` in counting keys such as
user x category (their exposures are counted together, not dropped).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ltr._validation import check_bool, check_frame, check_int
from ltr.features._attributes import AttributeTable, ItemAttributeValues
from ltr.features._binning import BinCollapseWarning, QuantileBinner
from ltr.features._blocks import Batch, CategoricalBlock, ContinuousBlock
from ltr.features._categories import AttributeCategories, ContextCategories
from ltr.features._counting import WindowedCounts, fit_priors
from ltr.features._day_tables import DayTableCache
from ltr.features._encoding import CategoryEncoder
from ltr.features._frame import prepare_frame
from ltr.features._matrix import FeatureMatrix, Layout
from ltr.features._params import check_params, params_from_state, params_to_state
from ltr.features._pit_stats import DailyStats
from ltr.features._plan import FeaturePlan, plan_for_samples
from ltr.features._recent_clicks import RecentClickCosine
from ltr.features._smoothing import BetaPrior
from ltr.features._space import FeatureSpace
from ltr.features._state import export_state, import_state
from ltr.features._tables import HistoryTables, build_tables, cutoff

__all__ = ["FeatureBuilder", "FeatureMatrix"]

_FORMAT = "ltr.FeatureBuilder"
_FORMAT_VERSION = 2


class FeatureBuilder(TransformerMixin, BaseEstimator):
    """Point-in-time ranker features from exposure-level samples.

    Parameters
    ----------
    windows : tuple of int, default=(1, 3, 7)
        Trailing windows in days for the counting features.
    key_families : tuple of str, default=("item", "user", "user_category", "item_position", "category")
        Built-in key families (see ``KEY_FAMILIES``). Families needing the item
        category are turned off when no items table with a ``category`` column is given.
    extra_keys : tuple of tuple of str, default=()
        More key families, each a tuple of columns of the samples frame (or ``"hour"``,
        ``"position"``, ``"item_<attr>"``, ``"user_<attr>"``), named by joining the
        columns with ``"__"``.
    n_bins : int, default=10
        Equal-frequency bins per continuous feature (edges from the training rows).
    min_count : int, default=20
        Categorical levels rarer than this in the training rows share the unknown slot.
    history_len : int, default=20
        Number of most recent clicks averaged into the user's embedding profile.
    lag_seconds : int or None, default=None
        None: statistics use rows on days strictly before the sample's day. An int:
        rows with ``ts < sample ts - lag_seconds`` (windows then count seconds,
        ``w * 86400``); clicks are timed by their exposure's ts, so the lag should cover
        the click delay.
    prior_method : {"moments", "mle"}, default="moments"
        How the per-family Beta prior of the smoothed CTR is fitted.
    categorical : tuple of str or None, default=None
        Categorical features, exactly (``context`` and ``max_levels`` do not apply). None:
        the context columns (see ``context``), hour, position, every string column of the
        items table (``item_<col>``) and every column of the users table (``user_<col>``),
        less ``exclude``, each but hour and position only when it has at most
        ``max_levels`` distinct values in the training rows (else reported in
        ``skipped_categorical_`` and left out).
    context : tuple of str or None, default=None
        Context columns of the samples offered as categorical features (request context
        such as ``tab``, ``device``). None: those of ``device, recall_source`` present in
        the samples (``ltr.train`` offers every column of the requests table and the
        candidates' ``recall_source``). Never ids, times, labels, ``rank_pos``/``rank_score``
        or ``bucket``.
    exclude : tuple of str, default=()
        Columns never used as categorical features (context columns, ``item_<attr>``,
        ``user_<attr>``, hour, position).
    max_levels : int, default=200
        Most distinct values an automatically chosen categorical feature may have in the
        training rows (attributes nearly unique per user, such as follower counts, act as
        user ids in a one-hot model and overfit).
    default_position : int, default=1
        Position used where the frame has no ``position`` column or it is missing
        (serving: candidates are scored as if shown first).
    tz : str, default="UTC"
        Time zone of the ``hour`` feature and of ``day`` when a frame lacks it.

    Attributes
    ----------
    items_, users_ : AttributeTable or None
        Item and user attributes by id, as given to ``fit``.
    plan_ : FeaturePlan
        Families and columns in use (see also ``families_``, ``categorical_``,
        ``input_columns_``).
    tables_ : HistoryTables
        Counting tables (``stats_``: one :class:`DailyStats` per family) and click
        history of the training samples; a ``history`` frame replaces them at transform.
    priors_ : dict of str -> BetaPrior
        Beta prior of each family's CTR, fitted on the per-key totals of the training rows.
    binner_ : QuantileBinner
        Bin edges of the binned continuous features.
    encoders_ : dict of str -> CategoryEncoder
        Kept levels of the categorical features, per group: ``"context"`` (columns of
        the frame, hour, position), ``"item"`` and ``"user"`` (attributes, encoded once
        per table row).
    space_ : FeatureSpace
        Column layout of ``X``.
    continuous_names_, binned_names_ : list of str
        Continuous features, and those of them that are binned (not NaN on every
        training row).
    families_ : dict of str -> tuple of str
        Key families in use and their key columns (read-only, from ``plan_``).
    categorical_ : list of str
        The categorical features (read-only, from ``plan_``).
    skipped_categorical_ : dict of str -> int
        Automatically chosen categorical features left out for having more than
        ``max_levels`` distinct values, with their count (read-only, from ``plan_``).
    input_columns_ : list of str
        Frame columns read beyond user_id, item_id, ts, day and position (read-only).
    stats_ : dict of str -> DailyStats
        The training counting tables (read-only, from ``tables_``).
    feature_names_, dense_names_ : list of str
        Column names of the outputs (read-only).

    Notes
    -----
    ``transform`` never changes the builder. Per-day tables that speed up repeated
    transforms of small batches live in a :class:`DayTableCache` the caller owns and passes
    as ``cache``.
    """

    def __init__(
        self,
        windows: Sequence[int] = (1, 3, 7),
        key_families: Sequence[str] = ("item", "user", "user_category", "item_position", "category"),
        extra_keys: Sequence[Sequence[str]] = (),
        n_bins: int = 10,
        min_count: int = 20,
        history_len: int = 20,
        lag_seconds: int | None = None,
        prior_method: str = "moments",
        categorical: Sequence[str] | None = None,
        context: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        max_levels: int = 200,
        default_position: int = 1,
        tz: str = "UTC",
    ):
        self.windows = windows
        self.key_families = key_families
        self.extra_keys = extra_keys
        self.n_bins = n_bins
        self.min_count = min_count
        self.history_len = history_len
        self.lag_seconds = lag_seconds
        self.prior_method = prior_method
        self.categorical = categorical
        self.context = context
        self.exclude = exclude
        self.max_levels = max_levels
        self.default_position = default_position
        self.tz = tz

    # ------------------------------------------------------------------ read-only views
    @property
    def families_(self) -> dict[str, tuple[str, ...]]:
        return dict(self.plan_.families)

    @property
    def categorical_(self) -> list[str]:
        return list(self.plan_.categorical)

    @property
    def skipped_categorical_(self) -> dict[str, int]:
        return dict(self.plan_.skipped_categorical)

    @property
    def input_columns_(self) -> list[str]:
        return list(self.plan_.input_columns)

    @property
    def stats_(self) -> dict[str, DailyStats]:
        return dict(self.tables_.stats)

    @property
    def feature_names_(self) -> list[str]:
        return list(self.space_.feature_names)

    @property
    def dense_names_(self) -> list[str]:
        return list(self.continuous_names_) + [f"{c}:code" for c in self.plan_.categorical]

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        check_params(self.get_params())

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        samples: pd.DataFrame,
        y: Any = None,
        *,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
    ) -> FeatureBuilder:
        """Learn counting tables, priors, bin edges and categories from training samples.

        Parameters
        ----------
        samples : pandas.DataFrame
            Training samples (``join_samples(...).samples`` restricted to the training
            days): user_id, item_id, ts, click, optional day, position, order and
            context columns.
        y : None
            Ignored (labels are the ``click`` column).
        items : pandas.DataFrame, optional
            Item attributes (``logs.items``): item_id, category, numeric columns,
            embedding.
        users : pandas.DataFrame, optional
            User profile (``logs.users``).

        Returns
        -------
        self : FeatureBuilder
        """
        self._validate_params()
        check_frame(samples, "samples")
        if len(samples) == 0:
            raise ValueError("samples must have at least 1 row. Got 0 rows instead.")
        self.items_ = None if items is None else AttributeTable.from_frame(items, "item_id", "items")
        self.users_ = None if users is None else AttributeTable.from_frame(users, "user_id", "users")
        self.plan_ = plan_for_samples(samples, self.get_params(), self.items_, self.users_)
        frame = self._prepare(samples, "samples", labels=True)
        self.tables_ = self._tables(frame)
        self.priors_ = fit_priors(self.tables_.stats, self.prior_method)
        continuous = self._continuous_blocks()
        end, span = cutoff(frame, self.lag_seconds)
        batch = Batch(frame, end, span, self.tables_, None)
        columns = [column for block in continuous for column in block.columns(batch)]
        self.continuous_names_ = [name for block in continuous for name in block.names]
        self._fit_binner(columns)
        categorical = self._fit_categorical(frame)
        self.encoders_ = {block.group: block.encoder for block in categorical}
        value_names = [name for block in continuous for name in block.value_names]
        self.space_ = FeatureSpace.from_transformers(self.binner_, *self.encoders_.values(), value_features=value_names)
        self._layout_ = self._layout(continuous, categorical)
        return self

    def _fit_binner(self, columns: Sequence[np.ndarray]) -> None:
        names = self.continuous_names_
        keep = [j for j, col in enumerate(columns) if not np.isnan(col).all()]
        self.binned_names_ = [names[j] for j in keep]
        binned = pd.DataFrame({names[j]: columns[j] for j in keep})
        with warnings.catch_warnings():
            # Count features are mostly zero, so collapsed edges are the norm, not news;
            # binner_.collapsed_edges_ keeps the record.
            warnings.simplefilter("ignore", BinCollapseWarning)
            self.binner_ = QuantileBinner(n_bins=self.n_bins).fit(binned)

    def _fit_categorical(self, frame: Mapping[str, np.ndarray]) -> tuple[CategoricalBlock, ...]:
        """Fit the categorical blocks (context, item, user) on the training rows."""
        plan = self.plan_
        blocks: list[CategoricalBlock] = []
        if plan.context:
            blocks.append(ContextCategories.fit(frame, plan.context, self.min_count))
        for group, table, names in (("item", self.items_, plan.item), ("user", self.users_, plan.user)):
            if names and table is not None:
                blocks.append(AttributeCategories.fit(frame, table, group, names, self.min_count))
        return tuple(blocks)

    # ------------------------------------------------------------------ blocks
    def _continuous_blocks(self) -> tuple[ContinuousBlock, ...]:
        """The continuous feature blocks, in output order."""
        windows = tuple(int(w) for w in self.windows)
        blocks: list[ContinuousBlock] = [WindowedCounts(self.plan_.families, windows, self.priors_)]
        if self.items_ is not None:
            blocks.append(ItemAttributeValues(self.items_))
            if self.items_.embedding is not None:
                blocks.append(RecentClickCosine(self.items_.embedding, int(self.history_len)))
        return tuple(blocks)

    def _categorical_blocks(self) -> tuple[CategoricalBlock, ...]:
        """The categorical blocks of the fitted encoders, in output order (context, item, user)."""
        plan = self.plan_
        blocks: list[CategoricalBlock] = []
        if "context" in self.encoders_:
            blocks.append(ContextCategories(plan.context, self.encoders_["context"]))
        for group, table, names in (("item", self.items_, plan.item), ("user", self.users_, plan.user)):
            if group in self.encoders_ and table is not None:
                blocks.append(AttributeCategories.from_encoder(self.encoders_[group], table, group, names))
        return tuple(blocks)

    def _layout(self, continuous: tuple[ContinuousBlock, ...], categorical: tuple[CategoricalBlock, ...]) -> Layout:
        """Transform-time view of the fitted state (derived; never changed by ``transform``)."""
        return Layout.build(continuous, categorical, self.binner_, self.binned_names_, self.space_, self.lag_seconds)

    # ------------------------------------------------------------------ frames and tables
    def _prepare(self, samples: Any, name: str, labels: bool, context: bool = True) -> dict[str, np.ndarray]:
        return prepare_frame(
            samples,
            name,
            plan=self.plan_,
            items=self.items_,
            users=self.users_,
            tz=self.tz,
            default_position=int(self.default_position),
            labels=labels,
            context=context,
        )

    def _tables(self, frame: Mapping[str, np.ndarray]) -> HistoryTables:
        time_column = "day" if self.lag_seconds is None else "ts"
        embedding = self.items_.embedding if self.items_ is not None else None
        return build_tables(frame, self.plan_.families, time_column, embedding)

    # ------------------------------------------------------------------ transform
    def transform(
        self,
        samples: pd.DataFrame,
        history: pd.DataFrame | None = None,
        *,
        dense: bool = True,
        chunk_size: int = 32768,
        cache: DayTableCache | None = None,
    ) -> FeatureMatrix:
        """Compute the features of ``samples``; never changes the builder.

        Parameters
        ----------
        samples : pandas.DataFrame
            Samples or a serving frame (user_id, item_id, ts; optional day, position and
            context columns; no labels needed). A context column missing from the frame
            goes to its missing level ``<nan>``; a missing ``position`` is ``default_position``.
        history : pandas.DataFrame, optional
            Exposure-level labelled samples replacing the fitted counting tables and
            click history (e.g. all logs up to the scored days). Only rows strictly
            before each sample's day (or ``ts - lag_seconds``) are used.
        dense : bool, default=True
            Also return the raw values (``FeatureMatrix.dense``); False leaves it with
            0 columns, for CSR-only consumers (the LR baseline), saving memory.
        chunk_size : int, default=32768
            Rows processed at a time; only memory and speed depend on it, never values.
        cache : DayTableCache, optional
            Where per-day tables of the fitted statistics are kept between calls (serving
            many small batches with one builder); only speed depends on it, never values.
            Tables of a ``history`` frame live for the call and never enter it. None: a
            cache that lives for the call.

        Returns
        -------
        features : FeatureMatrix
        """
        check_is_fitted(self, "space_")
        chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
        dense = check_bool(dense, "dense")
        if cache is not None and not isinstance(cache, DayTableCache):
            raise TypeError(f"cache must be a DayTableCache or None. Got {type(cache).__name__} instead.")
        frame = self._prepare(samples, "samples", labels=False)
        if history is None:
            tables = self.tables_
        else:
            tables = self._tables(self._prepare(history, "history", labels=True, context=False))
        if self.lag_seconds is not None:
            cache = None  # per-day tables serve day cut-offs only
        elif history is not None or cache is None:
            # Tables of a history frame live for this call, and so do their per-day tables.
            cache = DayTableCache.for_rows(frame["day"])
        return self._layout_.assemble(frame, tables, cache, dense, chunk_size)

    def fit_transform(
        self,
        samples: pd.DataFrame,
        y: Any = None,
        *,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
    ) -> FeatureMatrix:
        """Fit on ``samples`` then transform them (point-in-time, from the fitted tables).

        Parameters
        ----------
        samples, y, items, users
            As in :meth:`fit`.

        Returns
        -------
        features : FeatureMatrix
        """
        return self.fit(samples, y, items=items, users=users).transform(samples)

    # ------------------------------------------------------------------ state
    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Export the fitted builder as JSON-able metadata and numpy arrays (no pickle).

        Returns
        -------
        meta : dict
            Parameters, plan, priors, bin edges, categories, feature layout, and the
            metadata of every stored component.
        arrays : dict of str -> ndarray
            Counting tables, click history and attribute tables, namespaced by component;
            save with ``np.savez`` and load with ``np.load(..., allow_pickle=False)``.
        """
        check_is_fitted(self, "space_")
        arrays: dict[str, np.ndarray] = {}
        families = list(self.plan_.families)
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
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
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> FeatureBuilder:
        """Rebuild a fitted builder from :meth:`to_state` output.

        Parameters
        ----------
        meta : mapping
            The metadata (possibly after a JSON round trip).
        arrays : mapping of str -> ndarray
            The arrays (e.g. ``np.load(path, allow_pickle=False)``).

        Returns
        -------
        builder : FeatureBuilder
            Fitted; ``transform`` gives the same numbers as the exported builder.
        """
        if not isinstance(meta, Mapping):
            raise TypeError(f"meta must be a dict. Got {type(meta).__name__} instead.")
        if meta.get("format") != _FORMAT or meta.get("version") != _FORMAT_VERSION:
            raise ValueError(
                f"meta must have format {_FORMAT!r} version {_FORMAT_VERSION}. "
                f"Got format {meta.get('format')!r} version {meta.get('version')!r} instead."
            )
        try:
            self = cls(**params_from_state(meta["params"]))
            self._validate_params()
            self._restore(meta, arrays)
        except KeyError as exc:
            raise ValueError(
                f"meta/arrays must hold a complete FeatureBuilder state. Got no {exc.args[0]!r} instead."
            ) from None
        return self

    def _restore(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Set the learned attributes from :meth:`to_state` output."""
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
        self._layout_ = self._layout(self._continuous_blocks(), self._categorical_blocks())
