"""What every ranker model shares: the :class:`RankerModel` interface, input checks, persistence.

A model directory holds ``params.json`` (model kind, constructor parameters, feature names
and any fitted scalars) beside the model's own files in safe formats; nothing is pickled.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, TypeVar, runtime_checkable

import numpy as np
import scipy.sparse as sp

__all__ = ["PARAMS_FILE", "ModelConvergenceWarning", "RankerModel", "check_X", "check_categorical",
           "check_feature_names", "check_y"]

PARAMS_FILE = "params.json"

_M = TypeVar("_M", bound="_Base")


class ModelConvergenceWarning(UserWarning):
    """The optimiser stopped at its iteration limit before meeting its tolerance."""


@runtime_checkable
class RankerModel(Protocol):
    """What the bundle, the scorer and the explainer need from a fitted model.

    ``predict`` returns click probabilities; ``contributions`` returns an
    ``(n_samples, n_features + 1)`` array on the logit scale whose last column is the bias
    (intercept or expected value) and whose rows sum to ``logit(predict(X))``. ``save``
    writes the model to a directory and the classmethod ``load`` reads it back.
    """

    name: ClassVar[str]
    feature_names_: list[str]

    def fit(self, X: Any, y: Any, feature_names: Sequence[str] | None = None, *,
            categorical: Sequence[int] | None = None, valid: tuple[Any, Any] | None = None) -> RankerModel: ...

    def predict(self, X: Any) -> np.ndarray: ...

    def contributions(self, X: Any) -> np.ndarray: ...

    def get_params(self) -> dict[str, Any]: ...

    def save(self, directory: str | Path) -> None: ...

    @classmethod
    def load(cls, directory: str | Path) -> RankerModel: ...


def check_X(X: Any, name: str = "X") -> sp.csr_matrix | np.ndarray:
    """``X`` as a float CSR matrix or a float 2-D ndarray; ``TypeError`` for anything else."""
    if sp.issparse(X):
        X = sp.csr_matrix(X) if X.format != "csr" else X
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix. Got shape {X.shape} instead.")
        if not np.issubdtype(X.dtype, np.floating):
            X = X.astype(np.float64)
        return X
    if isinstance(X, np.ndarray) and X.ndim == 2 and np.issubdtype(X.dtype, np.number):
        return X if np.issubdtype(X.dtype, np.floating) else X.astype(np.float64)
    shape = getattr(X, "shape", None)
    raise TypeError(
        f"{name} must be a scipy.sparse matrix or a 2-D numeric numpy array. "
        f"Got {type(X).__name__} with shape {shape} instead."
    )


def check_y(y: Any, n_rows: int) -> np.ndarray:
    """0/1 labels, one per row, with both classes present, as float64."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_rows:
        raise ValueError(f"y must be a 1-D array of {n_rows} labels (one per row of X). Got shape {y.shape} instead.")
    if not np.issubdtype(y.dtype, np.number) or np.isnan(y.astype(np.float64)).any():
        raise ValueError(f"y must hold numeric 0/1 labels. Got dtype {y.dtype} instead.")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"y must hold only 0 and 1. Got {y[row].item()!r} at row {row} instead.")
    if np.unique(y).size < 2:
        raise ValueError(f"y must contain both classes 0 and 1. Got only {int(y[0])} instead.")
    return y.astype(np.float64)


def check_feature_names(feature_names: Sequence[str] | None, n_features: int) -> list[str]:
    """One unique name per column (``f0, f1, ...`` when none are given)."""
    if feature_names is None:
        return [f"f{j}" for j in range(n_features)]
    names = [str(name) for name in feature_names]
    if len(names) != n_features:
        raise ValueError(
            f"feature_names must have one name per column of X ({n_features}). Got {len(names)} names instead."
        )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"feature_names must be unique. Got {name!r} more than once instead.")
        seen.add(name)
    return names


def check_categorical(categorical: Sequence[int] | None, n_features: int) -> list[int]:
    """Distinct column indices in ``[0, n_features)`` (empty when None)."""
    if categorical is None:
        return []
    out = []
    for j in categorical:
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < n_features:
            raise ValueError(f"categorical must hold column indices in [0, {n_features}). Got {j!r} instead.")
        out.append(int(j))
    if len(set(out)) != len(out):
        raise ValueError(f"categorical must not repeat a column. Got {list(categorical)!r} instead.")
    return out


class _Base:
    """``fit`` with its input checks, fitted-state checks, ``get_params``, and ``save``/``load``.

    Subclasses set ``name`` and ``_param_names`` and implement ``_checked_params()`` (their
    constructor parameters, validated, in the form ``_fit`` takes), ``_fit(X, y, params)``,
    ``_save_files(root) -> dict`` (write their own files, return extra JSON-able values for
    ``params.json``) and ``_load_files(root, payload)`` (restore the fitted state,
    ``n_features_in_`` included).
    """

    name: ClassVar[str] = ""
    _param_names: ClassVar[tuple[str, ...]] = ()
    n_features_in_: int
    feature_names_: list[str]

    def fit(self, X: Any, y: Any, feature_names: Sequence[str] | None = None, *,
            categorical: Sequence[int] | None = None, valid: tuple[Any, Any] | None = None) -> Self:
        """Fit on a feature matrix and 0/1 click labels.

        Parameters
        ----------
        X : scipy.sparse matrix or ndarray of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) with values in {0, 1}
        feature_names : sequence of str, optional
            One unique name per column; default ``f0, f1, ...``.
        categorical : sequence of int, optional
            Columns holding integer category codes (LightGBM splits them as native
            categoricals; a linear model reads its one-hot columns and ignores this).
        valid : (X, y), optional
            Validation rows (e.g. the last training day). LightGBM stops boosting when
            their logloss has not improved for ``early_stopping_rounds`` rounds and records
            ``best_iteration_``; a linear model ignores them.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            A parameter out of range, bad labels or feature names.
        TypeError
            A parameter or ``X`` of the wrong kind.
        """
        params, X, y, names, cats = self._check_fit_inputs(X, y, feature_names, categorical)
        checked_valid = None
        if valid is not None:
            if not isinstance(valid, tuple) or len(valid) != 2:
                raise TypeError(f"valid must be a tuple (X, y). Got {type(valid).__name__} instead.")
            Xv = check_X(valid[0], "valid X")
            if Xv.shape[1] != X.shape[1]:
                raise ValueError(f"valid X must have {X.shape[1]} columns like X. Got {Xv.shape[1]} instead.")
            checked_valid = (Xv, check_y(valid[1], Xv.shape[0]))
        self._fit(X, y, params, cats, checked_valid)
        self.n_features_in_ = X.shape[1]
        self.feature_names_ = names
        return self

    def _check_fit_inputs(self, X: Any, y: Any, feature_names: Sequence[str] | None,
                          categorical: Sequence[int] | None) -> tuple[dict[str, Any], Any, np.ndarray, list[str],
                                                                     list[int]]:
        """The checked parameters, ``X``, ``y``, feature names and categorical columns of a fit."""
        params = self._checked_params()
        X = check_X(X)
        y = check_y(y, X.shape[0])
        return params, X, y, check_feature_names(feature_names, X.shape[1]), check_categorical(categorical, X.shape[1])

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first.")

    def _check_predict_X(self, X: Any) -> sp.csr_matrix | np.ndarray:
        self._check_fitted()
        X = check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must have {self.n_features_in_} columns (the features the model was fitted on). "
                f"Got {X.shape[1]} instead."
            )
        return X

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-ready)."""
        return {key: getattr(self, key) for key in self._param_names}

    def save(self, directory: str | Path) -> None:
        """Write ``params.json`` and the model's own files under ``directory`` (created if needed).

        Raises
        ------
        ValueError
            The model is not fitted.
        """
        self._check_fitted()
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        extra = self._save_files(root)
        payload = {"model": self.name, "params": self.get_params(), "feature_names": self.feature_names_, **extra}
        (root / PARAMS_FILE).write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def load(cls: type[_M], directory: str | Path) -> _M:
        """Inverse of :meth:`save`; safe formats only (no pickle).

        Raises
        ------
        ValueError
            ``directory`` holds no saved model of this kind.
        """
        root = Path(directory)
        path = root / PARAMS_FILE
        if not path.is_file():
            raise ValueError(f"{root} must hold a saved {cls.__name__} ({PARAMS_FILE}). Got no such file instead.")
        payload = json.loads(path.read_text())
        if payload.get("model") != cls.name:
            raise ValueError(f"{root} must hold a {cls.name!r} model. Got {payload.get('model')!r} instead.")
        model = cls(**payload["params"])
        model._load_files(root, payload)
        model.feature_names_ = check_feature_names(payload["feature_names"], model.n_features_in_)
        return model

    def _checked_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _fit(self, X: sp.csr_matrix | np.ndarray, y: np.ndarray, params: dict[str, Any], categorical: list[int],
             valid: tuple[Any, np.ndarray] | None) -> None:
        raise NotImplementedError

    def _save_files(self, root: Path) -> dict[str, Any]:
        raise NotImplementedError

    def _load_files(self, root: Path, payload: dict[str, Any]) -> None:
        raise NotImplementedError
