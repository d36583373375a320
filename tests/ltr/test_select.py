"""Tests for ltr.models.fit_validated: settings chosen on the validation rows, then a refit."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from ltr.models import C_GRID, LightGBMRanker, LogisticRegressionRanker, fit_validated


def _problem(seed: int, n: int = 3000, d: int = 40):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) < 0.2).astype(np.float64)
    w = rng.normal(size=d) * 0.6
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w - 1.0)))).astype(np.int64)
    valid = np.arange(n) >= int(n * 0.75)
    return X, y, valid, [f"f{j}" for j in range(d)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lr_grid_choice_matches_cold_fits(seed):
    X, y, valid, names = _problem(seed)
    model, record = fit_validated("lr", {}, sp.csr_matrix(X), y, valid, names)
    # Reference: every C fitted from scratch with scikit-learn, lowest validation logloss.
    losses = {C: log_loss(y[valid], LogisticRegression(C=C, max_iter=1000).fit(X[~valid], y[~valid])
                          .predict_proba(X[valid])[:, 1]) for C in sorted(C_GRID)}
    best = min(losses, key=losses.__getitem__)
    assert record["chosen"] == {"C": best}
    # Warm-started probes reach the same optimum within lbfgs's tolerance.
    assert record["valid"]["logloss"] == pytest.approx(losses[best], rel=1e-3)
    assert record["rows"] == {"fit": int((~valid).sum()), "valid": int(valid.sum())} and record["refit"]
    # The refit uses every row with the chosen C, started from the grid's solution: the optimum
    # of a tightly converged scikit-learn fit, to lbfgs's tolerance, in no more iterations than
    # a fit from zeros.
    exact = LogisticRegression(C=best, tol=1e-12, max_iter=10000).fit(X, y)
    assert _objective(model.coef_, model.intercept_, X, y, best) == pytest.approx(
        _objective(exact.coef_[0], exact.intercept_[0], X, y, best), rel=1e-5)
    np.testing.assert_allclose(model.predict(X), exact.predict_proba(X)[:, 1], rtol=0, atol=5e-3)
    assert model.n_iter_ <= LogisticRegressionRanker(C=best).fit(sp.csr_matrix(X), y, names).n_iter_


def _objective(coef, intercept, X, y, C):
    """scikit-learn's L2-penalised logistic loss: 0.5 |w|^2 + C * sum of logloss."""
    z = X @ coef + intercept
    return 0.5 * coef @ coef + C * np.sum(np.logaddexp(0.0, z) - y * z)


def _stopping_rule(losses: list[float], patience: int) -> int:
    """Rounds early stopping keeps: the best round seen when ``patience`` rounds brought no improvement."""
    best = 0
    for r in range(1, len(losses)):
        if losses[r] < losses[best]:
            best = r
        elif r - best >= patience:
            break
    return best + 1


@pytest.mark.parametrize("refit", [True, False])
@pytest.mark.parametrize("seed", [3, 6])
def test_lgbm_early_stopping_rounds_are_kept(refit, seed):
    import lightgbm as lgb

    X, y, valid, names = _problem(seed)
    params = {"num_boost_round": 200, "num_threads": 1, "min_data_in_leaf": 20, "early_stopping_rounds": 10,
              "learning_rate": 0.3}
    model, record = fit_validated("lgbm", params, X, y, valid, names, refit=refit)
    rounds = record["chosen"]["num_boost_round"]
    assert isinstance(model, LightGBMRanker) and model.booster_.num_trees() == rounds
    # Reference: every round boosted on the earlier rows (binned with all rows, as the fit bins
    # once), the validation logloss of each round by scikit-learn, the stopping rule applied here.
    checked = LightGBMRanker(**params)._checked_params()
    whole = lgb.Dataset(X, label=y, params=checked).construct()
    full_run = lgb.train(checked, whole.subset(np.flatnonzero(~valid)), num_boost_round=200)
    losses = [log_loss(y[valid], full_run.predict(X[valid], num_iteration=r)) for r in range(1, 201)]
    assert rounds == _stopping_rule(losses, 10) and rounds < 200  # the run did stop early
    assert record["valid"]["logloss"] == pytest.approx(losses[rounds - 1], rel=1e-9)
    if refit:
        reference = LightGBMRanker(**{**params, "num_boost_round": rounds}).fit(X, y, names)
    else:
        reference = full_run
        assert model.get_params() == LightGBMRanker(**params).get_params()
    np.testing.assert_allclose(model.predict(X), reference.predict(X, **({} if refit else {"num_iteration": rounds})),
                               rtol=0, atol=1e-12)


def test_lr_without_refit_keeps_the_probe_and_given_C_skips_the_grid():
    X, y, valid, names = _problem(4)
    model, record = fit_validated("lr", {}, sp.csr_matrix(X), y, valid, names, refit=False)
    reference = LogisticRegressionRanker(C=record["chosen"]["C"]).fit(sp.csr_matrix(X[~valid]), y[~valid], names)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=0, atol=1e-12)
    _, given = fit_validated("lr", {"C": 0.5}, sp.csr_matrix(X), y, valid, names)
    assert given["chosen"] == {"C": 0.5}


def test_validation_rows_need_both_classes():
    X, y, valid, names = _problem(5)
    y = y.copy()
    y[valid] = 0
    with pytest.raises(ValueError, match="must each hold clicks and non-clicks"):
        fit_validated("lr", {}, sp.csr_matrix(X), y, valid, names)
