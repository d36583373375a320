"""The online scorer: ``ltr.Ranker.load(bundle).score(frame)``.

A :class:`Ranker` is a fitted feature pipeline plus a model. Online code hands it one
request's candidates (request_id, user_id, item_id, ts and the context columns the bundle
was trained with) and gets back one click probability per row, computed exactly as the batch
path (``python -m ltr.score``) computes it for the same rows.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr._contributions import top_contributions
from ltr._validation import check_bool, check_frame, check_int
from ltr.bundle import check_inputs, design_matrix, read_bundle, write_bundle
from ltr.features import DayTableCache, FeatureBuilder
from ltr.logs import day_index, format_day
from ltr.models import LightGBMRanker, RankerModel, compile_trees

__all__ = ["REQUIRED_COLUMNS", "Ranker", "StaleStatisticsWarning", "statistics_record"]

#: Columns every frame to score must have; the bundle adds its context columns.
REQUIRED_COLUMNS = ("request_id", "user_id", "item_id", "ts")


class StaleStatisticsWarning(UserWarning):
    """A request is more than one day past the end of the bundle's statistics (refresh it)."""


class Ranker:
    """A fitted feature pipeline and model that score candidates point-in-time.

    Parameters
    ----------
    features : ltr.features.FeatureBuilder
        Fitted; holds the point-in-time statistics tables, bin edges and priors.
    model : RankerModel
        Fitted on ``design_matrix(features.transform(...), inputs)``.
    inputs : {"onehot", "dense", "both"}
        Which feature representation the model reads.
    metadata : dict, optional
        Training window, metrics and the like (stored in the bundle manifest).
    compiled : bool, default=False
        Score a LightGBM model with its trees compiled to native code (lleaves, the ``serving``
        extra): the same probabilities (to 1e-9), ~15x faster per request, a few seconds to
        compile at construction. Logistic regression has no trees and ignores it.
    """

    def __init__(self, features: FeatureBuilder, model: RankerModel, inputs: str = "onehot",
                 metadata: dict[str, Any] | None = None, compiled: bool = False):
        self.features = features
        self.model = model
        self.inputs = check_inputs(model.name, inputs)
        self.metadata = dict(metadata or {})
        self.compiled = check_bool(compiled, "compiled")
        self._trees = compile_trees(model) if compiled and isinstance(model, LightGBMRanker) else None
        # Online calls repeat the same few days: the per-day statistics tables are built once
        # and kept here, outside the (pure) feature pipeline.
        self._feature_cache = DayTableCache()
        # First epoch second of a day past the statistics' freshness (day stats_end_ + 1 in the
        # bundle's zone): one comparison per request instead of a time-zone conversion.
        self._stale_from = _stale_from(features)

    # -- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, bundle: str | Path, compiled: bool = False) -> Ranker:
        """Load a bundle directory, verifying its format version and checksums.

        Parameters
        ----------
        bundle : str or Path
        compiled : bool, default=False
            See the class parameter (LightGBM scored by compiled trees).

        Raises
        ------
        ltr.artifacts.ArtifactError
            Missing, tampered with, or written by a newer format version.
        """
        features, model, inputs, metadata = read_bundle(bundle)
        return cls(features, model, inputs, metadata, compiled=compiled)

    def save(self, out: str | Path) -> None:
        """Write this ranker as a bundle directory (see :mod:`ltr.bundle` for the layout).

        The manifest, with :attr:`metadata` in it, is ``out/manifest.json``.

        Raises
        ------
        ValueError
            ``out`` is a file or a non-empty directory that is not a bundle.
        """
        write_bundle(out, self.features, self.model, self.inputs, self.metadata)

    # -- scoring -----------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """Names of the model's input columns."""
        return list(self.model.feature_names_)

    @property
    def required_columns(self) -> list[str]:
        """Columns a frame must have to be scored by this bundle."""
        context = [c for c in _context_columns(self.features) if c not in REQUIRED_COLUMNS]
        return list(REQUIRED_COLUMNS) + context

    def _check_frame(self, frame: Any) -> pd.DataFrame:
        check_frame(frame, "frame")
        missing = [c for c in self.required_columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"frame must have column {missing[0]!r} (this bundle needs {self.required_columns}). "
                f"Got columns {list(map(str, frame.columns))} instead."
            )
        return frame

    def transform(self, frame: pd.DataFrame,
                  history: pd.DataFrame | None = None) -> tuple[sp.csr_matrix | np.ndarray, list[str]]:
        """Model input matrix and column names for ``frame``.

        Parameters
        ----------
        frame : DataFrame
            Rows to score (see :attr:`required_columns`).
        history : DataFrame, optional
            Exposure-level samples (``ltr.join_samples(logs).samples``) replacing the
            statistics stored in the bundle; only rows strictly before each row's day are used.

        Returns
        -------
        X : scipy.sparse.csr_matrix or ndarray
        names : list of str
        """
        frame = self._check_frame(frame)
        # Each model reads one representation (or both): skip building the other.
        matrix = self.features.transform(frame, history=history, dense=self.inputs != "onehot",
                                         onehot=self.inputs != "dense", cache=self._feature_cache)
        return design_matrix(matrix, self.inputs)

    def score(self, frame: pd.DataFrame, history: pd.DataFrame | None = None) -> np.ndarray:
        """Click probability of every row of ``frame``, in row order.

        Parameters
        ----------
        frame : DataFrame
            One request's candidates (or any rows): request_id, user_id, item_id, ts, plus
            the context columns in :attr:`required_columns`.
        history : DataFrame, optional
            See :meth:`transform`. Without it the statistics stored in the bundle are used.

        Returns
        -------
        ndarray of float64, shape (len(frame),)

        Raises
        ------
        TypeError
            ``frame`` is not a DataFrame.
        ValueError
            A required column is missing (the message names it).
        """
        frame = self._check_frame(frame)
        if len(frame) == 0:
            return np.empty(0, dtype=np.float64)
        if history is None:
            self._warn_if_stale(frame)
        X, _ = self.transform(frame, history=history)
        return self._trees.predict(X) if self._trees is not None else self.model.predict(X)

    @property
    def statistics_end(self) -> str | None:
        """Last day the bundle's statistics count (``YYYY-MM-DD``); None with lag-based cut-offs."""
        features = self.features
        if features.lag_seconds is not None:
            return None
        return format_day(int(features.stats_end_) - 1)

    def _warn_if_stale(self, frame: pd.DataFrame) -> None:
        features = self.features
        if features.lag_seconds is not None:
            return
        ts = frame["ts"].to_numpy()
        if ts.dtype.kind not in "iu" or self._stale_from is None or ts.max() < self._stale_from:
            return  # fresh (or a bad column, which the feature pipeline names)
        day = int(day_index(np.array([ts.max()], dtype=np.int64), features.tz)[0])
        # Day stats_end_ is the first day the statistics do not count: scoring it is fresh.
        if day > int(features.stats_end_):
            warnings.warn(
                f"request day {format_day(day)} is {day - int(features.stats_end_) + 1} days past the end of the "
                f"bundle's statistics ({self.statistics_end}); refresh them with python -m ltr.refresh.",
                StaleStatisticsWarning, stacklevel=3)

    def explain(self, frame: pd.DataFrame, top: int = 10, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Largest per-feature contributions (logit scale) behind each row's score.

        LR: weight x value of each active feature; LightGBM: ``pred_contrib`` (SHAP) values.
        A row's contributions over all features plus ``bias`` sum to ``logit``.

        Parameters
        ----------
        frame : DataFrame
            Rows to explain (keep it small: contributions are dense per row).
        top : int, default 10
            Features kept per row, by absolute contribution; zero contributions are dropped.
        history : DataFrame, optional
            See :meth:`transform`.

        Returns
        -------
        DataFrame
            One row per (input row, feature): ``row`` (position in ``frame``), request_id,
            item_id, ``rank`` (1 = largest absolute contribution), feature, value,
            contribution, bias, logit, score.

        Raises
        ------
        ValueError
            ``top`` below 1, or a required column is missing.
        """
        top = check_int(top, "top", minimum=1)
        frame = self._check_frame(frame)
        X, names = self.transform(frame, history=history)
        contributions = self.model.contributions(X)
        return top_contributions(frame, X, contributions, names, top)

    def __repr__(self) -> str:
        window = self.metadata.get("training", {})
        return (f"Ranker(model={self.model.name!r}, inputs={self.inputs!r}, "
                f"n_features={len(self.feature_names)}, train_end={window.get('train_end')!r})")


def _stale_from(features: FeatureBuilder) -> int | None:
    """Epoch second from which a request is more than one day past the statistics (None: lag cut-offs)."""
    if features.lag_seconds is not None:
        return None
    start = pd.Timestamp(format_day(int(features.stats_end_) + 1)).tz_localize(
        features.tz, ambiguous=True, nonexistent="shift_forward")
    return int(start.timestamp())


def _context_columns(features: FeatureBuilder) -> list[str]:
    """Frame columns the fitted feature pipeline reads beyond the required ones."""
    return [str(c) for c in features.input_columns_]


def statistics_record(features: FeatureBuilder) -> dict[str, Any]:
    """What a bundle's manifest says about its statistics: their end day and the frozen families.

    ``end`` is the last day the counting tables hold (advanced by ``python -m ltr.refresh``);
    ``frozen_through`` the last day the families in ``frozen_families`` count (the training
    end: they are refreshed with the model).
    """
    if features.lag_seconds is not None:
        return {"end": None, "frozen_families": list(features.plan_.frozen), "frozen_through": None}
    return {"end": format_day(int(features.stats_end_) - 1), "frozen_families": list(features.plan_.frozen),
            "frozen_through": format_day(int(features.freeze_end_) - 1)}
