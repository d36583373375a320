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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ltr._validation import check_bool, check_frame, check_int
from ltr.features._assembly import (
    categorical_blocks,
    continuous_blocks,
    count_tables,
    export_builder,
    fit_binner,
    fit_categorical,
    prepare,
    refreshed_copy,
    restore_builder,
    transform_rows,
)
from ltr.features._attributes import AttributeTable
from ltr.features._blocks import Batch, CategoricalBlock, ContinuousBlock
from ltr.features._counting import fit_priors
from ltr.features._day_tables import DayTableCache
from ltr.features._matrix import FeatureMatrix, Layout
from ltr.features._params import check_params, params_from_state
from ltr.features._pit_stats import DailyStats
from ltr.features._plan import plan_for_samples
from ltr.features._request import RequestLayout
from ltr.features._space import FeatureSpace
from ltr.features._tables import cutoff

__all__ = ["FeatureBuilder", "FeatureMatrix"]

_FORMAT = "ltr.FeatureBuilder"
_FORMAT_VERSION = 3


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
    all_history : bool, default=True
        Also count every earlier day (window ``all``: ``{family}_ctr_all`` ...).
    item_keys : tuple of str or None, default=None
        Item attributes that are ids of something else (an author, a music track). None:
        the items table's columns named ``*_id``. Never numeric features.
    ids : bool, default=True
        Id-level categorical features: ``user_id``, ``item_id`` and the item keys, with
        ``id_min_count``.
    id_min_count : int, default=5
        An id must occur this many times in the training rows to get its own level.
    cross_keys : bool, default=True
        Count every item key on its own (``item_<key>``) and crossed with the user
        (``user_item_<key>``).
    recency : bool, default=True
        Days since the user last clicked the item, each item key and the category
        (``{family}_days_since_click`` of the user x item-side families).
    outcomes : tuple of str, default=()
        Outcome columns of the samples (what happened after an exposure: watch ratio,
        likes), counted point-in-time like clicks; a row's own outcome never reaches its
        features. Each ``outcome_families`` family reports the mean outcome per window.
    outcome_families : tuple of str or None, default=None
        Families reporting outcome means. None: item, every item key, and user.
    frozen_families : tuple of str or None, default=None
        Families refreshed with the model rather than daily: their statistics stop at the
        end of the training window (rows after it see them as they were then; training rows
        are point-in-time as always). None: every family without an item-side key column
        (user, user x context ...). A user's own propensity does not order one request's
        candidates; refreshed daily it moves each user's scores from day to day with the
        previous day's outcomes, which ranks the user's exposures of different days worse.

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
        all_history: bool = True,
        item_keys: Sequence[str] | None = None,
        ids: bool = True,
        id_min_count: int = 5,
        cross_keys: bool = True,
        recency: bool = True,
        outcomes: Sequence[str] = (),
        outcome_families: Sequence[str] | None = None,
        frozen_families: Sequence[str] | None = None,
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
        self.all_history = all_history
        self.item_keys = item_keys
        self.ids = ids
        self.id_min_count = id_min_count
        self.cross_keys = cross_keys
        self.recency = recency
        self.outcomes = outcomes
        self.outcome_families = outcome_families
        self.frozen_families = frozen_families

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
        self._fit(samples, items, users)
        return self

    def _fit(self, samples: pd.DataFrame, items: pd.DataFrame | None,
             users: pd.DataFrame | None) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Fit; return the prepared training frame and its continuous columns (for ``fit_transform``)."""
        self._validate_params()
        check_frame(samples, "samples")
        if len(samples) == 0:
            raise ValueError("samples must have at least 1 row. Got 0 rows instead.")
        self.items_ = None if items is None else AttributeTable.from_frame(items, "item_id", "items")
        self.users_ = None if users is None else AttributeTable.from_frame(users, "user_id", "users")
        self.plan_ = plan_for_samples(samples, self.get_params(), self.items_, self.users_)
        frame = prepare(self, samples, "samples", labels=True)
        self.tables_ = count_tables(self, frame)
        self.stats_end_ = int(frame[self._time_column()].max()) + 1
        self.freeze_end_ = self.stats_end_
        self.priors_ = fit_priors(self.tables_.stats, self.prior_method)
        continuous = continuous_blocks(self)
        end, span = cutoff(frame, self.lag_seconds)
        batch = Batch(frame, end, span, self.tables_, None)
        columns = [column for block in continuous for column in block.columns(batch)]
        self.continuous_names_ = [name for block in continuous for name in block.names]
        fit_binner(self, columns)
        categorical = fit_categorical(self, frame)
        self.encoders_ = {block.group: block.encoder for block in categorical}
        value_names = [name for block in continuous for name in block.value_names]
        self.space_ = FeatureSpace.from_transformers(self.binner_, *self.encoders_.values(), value_features=value_names)
        self._set_layout(continuous, categorical)
        return frame, columns

    def _time_column(self) -> str:
        return "day" if self.lag_seconds is None else "ts"

    def _set_layout(self, continuous: tuple[ContinuousBlock, ...], categorical: tuple[CategoricalBlock, ...]) -> None:
        """Transform-time views of the fitted state (derived; never changed by ``transform``)."""
        self._layout_ = Layout.build(continuous, categorical, self.binner_, self.binned_names_, self.space_,
                                     self.lag_seconds)
        self._request_ = RequestLayout.split(self._layout_, self.plan_.families, self.plan_.key_attributes)

    def refreshed(self, history: pd.DataFrame, through: int) -> FeatureBuilder:
        """A copy whose statistics are counted from the ``history`` rows of days up to ``through``.

        The daily refresh of serving: nothing learned from the training rows changes (priors,
        bins, categories, the families frozen at the training end), only the counting tables
        and click history, so the copy transforms day ``through + 1`` exactly as this builder
        transforms it with ``history`` given.

        Parameters
        ----------
        history : pandas.DataFrame
            Labelled samples (with the outcome columns the builder was fitted with).
        through : int
            Last day (day index) of the statistics.

        Returns
        -------
        builder : FeatureBuilder
            With ``stats_end_ = through + 1``.
        """
        return refreshed_copy(self, history, through)

    # ------------------------------------------------------------------ transform
    def transform(
        self,
        samples: pd.DataFrame,
        history: pd.DataFrame | None = None,
        *,
        dense: bool = True,
        onehot: bool = True,
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
        onehot : bool, default=True
            Also return the one-hot matrix (``FeatureMatrix.X``); False leaves it with 0
            columns, for consumers of the raw values only (LightGBM on ``dense`` inputs).
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
        if not (check_bool(onehot, "onehot") or dense):
            raise ValueError("dense or onehot must be True (there would be no features). Got both False instead.")
        if cache is not None and not isinstance(cache, DayTableCache):
            raise TypeError(f"cache must be a DayTableCache or None. Got {type(cache).__name__} instead.")
        return transform_rows(self, samples, history, cache, dense=dense, onehot=onehot, chunk_size=chunk_size)

    def fit_transform(
        self,
        samples: pd.DataFrame,
        y: Any = None,
        *,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        onehot: bool = True,
    ) -> FeatureMatrix:
        """Fit on ``samples`` then transform them (point-in-time, from the fitted tables).

        Parameters
        ----------
        samples, y, items, users
            As in :meth:`fit`.
        onehot : bool, default=True
            Also return the one-hot matrix; False leaves it with 0 columns (models of the raw
            values only). The fitted builder is the same either way.

        Returns
        -------
        features : FeatureMatrix
        """
        # The training rows' statistics were computed to fit the bins: reuse them.
        onehot = check_bool(onehot, "onehot")
        frame, columns = self._fit(samples, items, users)
        cache = DayTableCache.for_rows(frame["day"]) if self.lag_seconds is None else None
        return self._layout_.assemble(frame, self.tables_, cache, True, 32768, continuous=columns, onehot=onehot)

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
        return export_builder(self, _FORMAT, _FORMAT_VERSION)

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
            restore_builder(self, meta, arrays)
        except KeyError as exc:
            raise ValueError(
                f"meta/arrays must hold a complete FeatureBuilder state. Got no {exc.args[0]!r} instead."
            ) from None
        self._set_layout(continuous_blocks(self), categorical_blocks(self))
        return self
