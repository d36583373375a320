"""Logistic regression on Dask (``ltr.distributed._lr``): the summed per-part losses and gradients
are scikit-learn's lbfgs objective, scipy's L-BFGS-B with scikit-learn's options finds
``LogisticRegression(solver="lbfgs")``'s optimum, and on the partitioned fixture world (LocalCluster
of 2 workers) the Dask model chooses the local model's ``C``, predicts the held-out rows within
1e-4 of it, and the client never gathers a matrix."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn._loss.loss import HalfBinomialLoss
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model._linear_loss import LinearModelLoss

import ltr.distributed._train as dask_train
from ltr import Ranker
from ltr.distributed._lr import SOLVER, fit_lr_on_dask, lbfgs_objective, minimize_lbfgs, part_loss_gradient
from ltr.distributed._train import train_on_dask
from ltr.logs import parse_day
from ltr.metrics import auc
from ltr.models import ModelConvergenceWarning
from ltr.train import default_feature_params, prepare_training, train_ranker

TRAIN_END = parse_day("2026-01-15")


def _problem(seed: int, n: int = 400, d: int = 30, dense: bool = False):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.2, format="csr", random_state=seed, data_rvs=lambda k: rng.normal(size=k))
    logit = np.asarray(X @ rng.normal(size=d)).ravel() - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    return (X.toarray() if dense else X), y


def _parts(X, y, seed: int, n_parts: int, every: bool):
    """Random parts of the rows, each split in two blocks at a random row; the rows the parts read."""
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(len(y))
    cuts = np.sort(rng.choice(np.arange(1, len(y)), size=n_parts - 1, replace=False))
    parts, kept = [], []
    for rows in np.split(order, cuts):
        mid = int(rng.integers(0, len(rows) + 1))
        parts.append(((X[rows[:mid]], y[rows[:mid]]), (X[rows[mid:]], y[rows[mid:]])))
        kept.append(rows if every else rows[:mid])
    return parts, np.concatenate(kept)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("every", [True, False])
@pytest.mark.parametrize(("C", "n_parts", "seed"), [(0.01, 1, 0), (1.0, 3, 1), (30.0, 7, 2)])
def test_summed_parts_are_sklearns_lbfgs_objective_and_gradient(C, n_parts, seed, every, dense):
    X, y = _problem(seed, dense=dense)
    parts, rows = _parts(X, y, seed, n_parts, every)
    theta = np.random.default_rng(seed + 2).normal(scale=0.5, size=X.shape[1] + 1)
    loss, gradient = lbfgs_objective([part_loss_gradient(p, theta, every=every) for p in parts], theta, C, len(rows))
    # scikit-learn's _logistic_regression_path: LinearModelLoss with l2_reg_strength = 1 / (C * n_samples).
    reference = LinearModelLoss(base_loss=HalfBinomialLoss(), fit_intercept=True)
    expected_loss, expected_gradient = reference.loss_gradient(theta, X[rows], y[rows], sample_weight=None,
                                                               l2_reg_strength=1.0 / (C * len(rows)))
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-10, atol=1e-14)
    # Independently of scikit-learn: the formula written out on the dense rows.
    Xd = X[rows].toarray() if sp.issparse(X) else X[rows]
    z = Xd @ theta[:-1] + theta[-1]
    direct = np.mean(np.log1p(np.exp(z)) - y[rows] * z) + theta[:-1] @ theta[:-1] / (2 * C * len(rows))
    np.testing.assert_allclose(loss, direct, rtol=1e-12)


@pytest.mark.parametrize(("C", "seed"), [(0.003, 3), (0.1, 4), (10.0, 5)])
def test_lbfgs_on_summed_parts_finds_sklearns_optimum(C, seed):
    X, y = _problem(seed, n=600, d=20)
    parts, rows = _parts(X, y, seed, 4, every=True)
    tol = 1e-10

    def objective(theta):
        return lbfgs_objective([part_loss_gradient(p, theta) for p in parts], theta, C, len(rows))

    theta, n_iter = minimize_lbfgs(objective, np.zeros(X.shape[1] + 1), max_iter=1000, tol=tol)
    expected = LogisticRegression(solver="lbfgs", C=C, tol=tol, max_iter=1000).fit(X, y)
    assert 0 < n_iter < 1000
    np.testing.assert_allclose(theta[:-1], expected.coef_[0], atol=1e-5)
    np.testing.assert_allclose(theta[-1], expected.intercept_[0], atol=1e-5)


@pytest.fixture(scope="module")
def lr_data(local_logs):
    return prepare_training(local_logs, TRAIN_END, feature_params=default_feature_params("lr"))


@pytest.mark.parametrize("options", [{}, {"refit": False}, {"model_params": {"C": 0.03}}])
def test_lr_on_dask_matches_the_local_model_and_serves_like_it(options, opened, local_logs, lr_data, tmp_path):
    got = train_on_dask(opened, "lr", TRAIN_END, leakage_check=False, **options)
    local = train_ranker(local_logs, "lr", data=lr_data, leakage_check=False, **options)
    training, expected = got.metadata["training"], local.metadata["training"]
    assert training["engine"] == {"name": "dask", "solver": SOLVER}
    assert training["fitted_rows"] == expected["fitted_rows"] == len(lr_data.train)
    # The same rule on the same rows: the same C, the record of the same shape and rows.
    assert training["validation"]["chosen"] == expected["validation"]["chosen"]
    assert training["validation"]["rows"] == expected["validation"]["rows"]
    assert training["validation"]["refit"] == expected["validation"]["refit"]
    assert training["converged"] and training["n_iter"] > 0
    np.testing.assert_allclose(training["validation"]["valid"]["logloss"], expected["validation"]["valid"]["logloss"],
                               atol=1e-5)
    # The same objective, the same L-BFGS-B and options, sums in another order: the same path up to rounding
    # (measured on the fixture: probabilities within 4.4e-6 with C given, 6e-8 otherwise); asserted within 1e-4.
    p = got.score(lr_data.held_out, history=lr_data.samples)
    q = local.score(lr_data.held_out, history=lr_data.samples)
    assert np.max(np.abs(p - q)) < 1e-4
    y = lr_data.held_out["click"].to_numpy()
    assert abs(auc(y, p) - auc(y, q)) < 0.002
    assert abs(got.metadata["metrics"]["auc"] - local.metadata["metrics"]["auc"]) < 1e-4
    got.save(tmp_path / "bundle")
    loaded = Ranker.load(tmp_path / "bundle")
    np.testing.assert_array_equal(loaded.score(lr_data.held_out, history=lr_data.samples), p)
    assert loaded.metadata["training"]["engine"] == training["engine"]


class _Recording:
    """A Dask client that keeps every leaf value it gathers."""

    def __init__(self, client) -> None:
        self.client, self.values = client, []

    def gather(self, futures):
        out = self.client.gather(futures)
        self._collect(out)
        return out

    def _collect(self, value) -> None:
        if isinstance(value, (list, tuple)):
            for item in value:
                self._collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                self._collect(item)
        else:
            self.values.append(value)

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_the_lr_fit_gathers_vectors_never_a_matrix(opened, lr_data, monkeypatch):
    recorded: list[_Recording] = []

    def recording_fit(client, rows, *args):
        recorded.append(_Recording(client))
        return fit_lr_on_dask(recorded[-1], dataclasses.replace(rows, client=recorded[-1]), *args)

    monkeypatch.setattr(dask_train, "fit_lr_on_dask", recording_fit)
    ranker = train_on_dask(opened, "lr", TRAIN_END, leakage_check=False)
    width = ranker.model.n_features_in_
    values = recorded[0].values
    arrays = [v for v in values if isinstance(v, np.ndarray)]
    # Not trivially: the gradients (one value per feature and the intercept) came back.
    assert sum(a.shape == (width + 1,) for a in arrays) > 10
    assert not [v for v in values if not isinstance(v, (np.ndarray, int, float, str, np.generic))]
    valid_rows = ranker.metadata["training"]["validation"]["rows"]["valid"]
    assert all(a.ndim == 1 and a.size <= max(width + 1, valid_rows) for a in arrays)
    assert valid_rows < len(lr_data.train) // 2


def test_lr_on_dask_without_validation_warns_like_the_local_model_when_it_stops_at_max_iter(opened, local_logs,
                                                                                           lr_data):
    options = {"validation": False, "model_params": {"max_iter": 3}, "leakage_check": False}
    with pytest.warns(ModelConvergenceWarning, match="did not converge in max_iter=3 lbfgs iterations"):
        got = train_on_dask(opened, "lr", TRAIN_END, **options)
    with pytest.warns(ModelConvergenceWarning, match="did not converge in max_iter=3"):
        local = train_ranker(local_logs, "lr", data=lr_data, **options)
    training = got.metadata["training"]
    assert training["validation"] is None and local.metadata["training"]["validation"] is None
    assert training["converged"] is False and training["n_iter"] == local.metadata["training"]["n_iter"] == 3
    assert got.model.get_params() == local.model.get_params()
    # Three L-BFGS-B steps from zeros on the same objective: the same point up to rounding.
    np.testing.assert_allclose(got.model.coef_, local.model.coef_, atol=1e-9)
    np.testing.assert_allclose(got.model.intercept_, local.model.intercept_, atol=1e-9)
