"""Tests for ltr.models: LR and LightGBM rankers behind one interface."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from ltr.models import (
    MODELS,
    LightGBMRanker,
    LogisticRegressionRanker,
    ModelConvergenceWarning,
    RankerModel,
    load_model,
    make_model,
)


def _data(seed: int = 0, n: int = 3000, p: int = 30):
    rng = np.random.default_rng(seed)
    onehot = (rng.random((n, p - 1)) < 0.15).astype(np.float64)
    # one real-valued column beside the one-hot ones
    X = sp.csr_matrix(np.column_stack([onehot, rng.normal(size=n)]))
    w = rng.normal(size=p)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ w - 2.0)))).astype(np.int8)
    return X, y


def _small(name: str):
    return make_model(name, num_boost_round=20, min_data_in_leaf=20) if name == "lgbm" else make_model(name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_protocol_and_probabilities(name):
    X, y = _data()
    model = _small(name).fit(X, y)
    assert isinstance(model, RankerModel)
    p = model.predict(X)
    assert p.dtype == np.float64 and p.shape == (X.shape[0],)
    assert np.all((p > 0) & (p < 1))
    # Pointwise binary models fitted with an intercept/boost-from-average are calibrated in the mean.
    assert abs(p.mean() - y.mean()) / y.mean() < 0.05


def test_lr_matches_sklearn_reference():
    X, y = _data(1)
    ours = LogisticRegressionRanker(C=0.5).fit(X, y)
    ref = LogisticRegression(solver="lbfgs", C=0.5, max_iter=1000, tol=1e-4).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ref.predict_proba(X)[:, 1], rtol=1e-10, atol=1e-12)
    assert ours.converged_ and ours.n_iter_ < 1000


@pytest.mark.parametrize("seed", [1, 5])
def test_lr_fit_from_reaches_the_same_optimum(seed):
    X, y = _data(seed)
    cold = LogisticRegressionRanker(C=0.5).fit(X, y)
    # From zeros it is the cold fit (scikit-learn starts there), bit for bit.
    zeros = LogisticRegressionRanker(C=0.5).fit_from(X, y, coef=np.zeros(X.shape[1]), intercept=0.0)
    np.testing.assert_array_equal(zeros.coef_, cold.coef_)
    assert zeros.n_iter_ == cold.n_iter_ and zeros.intercept_ == cold.intercept_
    # From the optimum (a tightly converged reference fit) it stays there in a few iterations.
    exact = LogisticRegression(solver="lbfgs", C=0.5, tol=1e-12, max_iter=10000).fit(X, y)
    warm = LogisticRegressionRanker(C=0.5).fit_from(X, y, coef=exact.coef_[0], intercept=exact.intercept_[0])
    np.testing.assert_allclose(warm.predict(X), exact.predict_proba(X)[:, 1], rtol=0, atol=1e-6)
    assert warm.n_iter_ < cold.n_iter_ and warm.converged_


@pytest.mark.parametrize("coef", [np.zeros(3), np.full(30, np.nan)])
def test_lr_fit_from_checks_the_start(coef):
    X, y = _data(0)
    with pytest.raises(ValueError, match="coef must hold 30 finite values"):
        LogisticRegressionRanker().fit_from(X, y, coef=coef, intercept=0.0)


def test_lr_contributions_brute_force():
    X, y = _data(2, n=400, p=12)
    model = LogisticRegressionRanker().fit(X, y)
    contrib = model.contributions(X[:25])
    dense = X[:25].toarray()
    for i in range(25):
        for j in range(12):
            assert contrib[i, j] == pytest.approx(model.coef_[j] * dense[i, j], abs=1e-15)
        assert contrib[i, 12] == model.intercept_
    zero = dense == 0
    assert np.all(contrib[:, :12][zero] == 0.0)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("dense_input", [False, True])
def test_contributions_sum_to_logit(name, dense_input):
    X, y = _data(3)
    model = _small(name).fit(X, y)
    Xq = X[:50].toarray() if dense_input else X[:50]
    contrib = model.contributions(Xq)
    assert contrib.shape == (50, X.shape[1] + 1)
    p = model.predict(Xq)
    np.testing.assert_allclose(contrib.sum(axis=1), np.log(p / (1 - p)), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_and_sparse_inputs_agree(name, dtype):
    X, y = _data(4)
    model = _small(name).fit(X, y)
    a = model.predict(X.astype(dtype))
    b = model.predict(X.toarray().astype(dtype))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_load_round_trip(name, tmp_path):
    X, y = _data(5)
    names = [f"feat_{j}=bin" for j in range(X.shape[1])]
    model = _small(name).fit(X, y, feature_names=names)
    assert model.save(tmp_path / "m") is None
    expected = {"lr": ["coef.npz", "params.json"], "lgbm": ["model.txt", "params.json"]}[name]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == expected
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(model)
    assert loaded.feature_names_ == names
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.contributions(X[:20]), model.contributions(X[:20]))


def test_lgbm_deterministic():
    X, y = _data(6)
    a = LightGBMRanker(num_boost_round=15, min_data_in_leaf=20, seed=3).fit(X, y).predict(X)
    b = LightGBMRanker(num_boost_round=15, min_data_in_leaf=20, seed=3).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_predict_does_not_change_model():
    X, y = _data(7)
    model = LogisticRegressionRanker().fit(X, y)
    before = (model.coef_.copy(), model.intercept_)
    model.predict(X)
    model.contributions(X[:3])
    np.testing.assert_array_equal(model.coef_, before[0])
    assert model.intercept_ == before[1]


def test_non_convergence_is_reported():
    X, y = _data(8)
    with pytest.warns(ModelConvergenceWarning, match="did not converge in max_iter=2"):
        model = LogisticRegressionRanker(max_iter=2).fit(X, y)
    assert model.converged_ is False and model.n_iter_ == 2


def test_convergence_is_silent():
    X, y = _data(8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert LogisticRegressionRanker().fit(X, y).converged_


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.full(3000, 2), r"y must hold only 0 and 1\. Got 2 at row 0"),
        (np.zeros(3000), "y must contain both classes"),
        (np.zeros(10), r"y must be a 1-D array of 3000 labels"),
    ],
)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_bad_labels(name, y, match):
    X, _ = _data()
    with pytest.raises(ValueError, match=match):
        _small(name).fit(X, y)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bad_features(name):
    X, y = _data()
    with pytest.raises(TypeError, match=r"X must be a scipy\.sparse matrix or a 2-D numeric numpy array\. Got list"):
        _small(name).fit([[1, 2]], y)
    with pytest.raises(ValueError, match=r"feature_names must have one name per column of X \(30\)\. Got 2"):
        _small(name).fit(X, y, feature_names=["a", "b"])
    with pytest.raises(ValueError, match=r"feature_names must be unique\. Got 'a'"):
        _small(name).fit(X, y, feature_names=["a"] * 30)
    with pytest.raises(ValueError, match="not fitted yet"):
        _small(name).predict(X)
    model = _small(name).fit(X, y)
    with pytest.raises(ValueError, match=r"X must have 30 columns .* Got 29 instead"):
        model.predict(X[:, :29])


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("xgb", {}, r"model must be one of \['lgbm', 'lr'\]\. Got 'xgb' instead\."),
        ("lr", {"class_weight": "balanced"}, "Got 'class_weight' instead"),
        ("lgbm", {"num_leaves": 0}, r"num_leaves must be an int in \[1, inf\)\. Got 0 instead\."),
        ("lr", {"C": -1.0}, r"C must be a float in \(0, inf\)\. Got -1\.0 instead\."),
        ("lr", {"max_iter": 0}, r"max_iter must be an int in \[1, inf\)\. Got 0 instead\."),
        ("lgbm", {"feature_fraction": 1.5}, r"feature_fraction must be a float in \(0, 1\]\. Got 1\.5 instead\."),
        ("lgbm", {"lambda_l2": -0.5}, r"lambda_l2 must be a float in \[0, inf\)\. Got -0\.5 instead\."),
        ("lgbm", {"max_bin": 1}, r"max_bin must be an int in \[2, inf\)\. Got 1 instead\."),
    ],
)
def test_bad_params(name, params, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        make_model(name, **params).fit(X, y)


def _thresholds(tree: dict, feature: int) -> set[float]:
    """Split thresholds on ``feature`` in one tree of LightGBM's JSON dump."""
    found, stack = set(), [tree["tree_structure"]]
    while stack:  # a handful of nodes per tree
        node = stack.pop()
        if "split_feature" in node:
            if node["split_feature"] == feature:
                found.add(float(node["threshold"]))
            stack += [node["left_child"], node["right_child"]]
    return found


@pytest.mark.parametrize("max_bin", [4, 16])
def test_lgbm_max_bin_limits_the_thresholds(max_bin):
    # The last column is real-valued (3,000 distinct values): with LightGBM's 255 bins the trees
    # split it at more than 16 places; with max_bin bins at most max_bin - 1.
    X, y = _data()
    column = X.shape[1] - 1

    def distinct(model) -> int:
        trees = model.booster_.dump_model()["tree_info"]
        return len(set().union(*(_thresholds(tree, column) for tree in trees)))

    params = {"num_boost_round": 60, "min_data_in_leaf": 20, "num_threads": 1}
    assert distinct(make_model("lgbm", **params).fit(X, y)) > 16
    assert 1 <= distinct(make_model("lgbm", **params, max_bin=max_bin).fit(X, y)) <= max_bin - 1


def test_load_refuses_unknown_model(tmp_path):
    (tmp_path / "params.json").write_text(json.dumps({"model": "svm"}))
    with pytest.raises(ValueError, match=r"must be one of \['lgbm', 'lr'\]\. Got 'svm' instead"):
        load_model(tmp_path)
    with pytest.raises(ValueError, match="must hold a saved model"):
        load_model(tmp_path / "nowhere")


@pytest.mark.parametrize(("name", "params", "match"), [
    ("lgbm", {"seed": "7"}, r"seed must be an int\. Got '7' instead\."),
    ("lgbm", {"num_threads": 2.0}, r"num_threads must be an int\. Got 2\.0 instead\."),
    ("lr", {"C": True}, r"C must be a float\. Got True instead\."),
])
def test_bad_param_types(name, params, match):
    X, y = _data()
    with pytest.raises(TypeError, match=match):
        make_model(name, **params).fit(X, y)


def test_load_refuses_other_kind(tmp_path):
    X, y = _data()
    _small("lgbm").fit(X, y).save(tmp_path / "m")
    with pytest.raises(ValueError, match=r"must hold a 'lr' model\. Got 'lgbm' instead\."):
        LogisticRegressionRanker.load(tmp_path / "m")
