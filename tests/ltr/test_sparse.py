"""Tests for ltr.sparse: CSR assembly from codes, FeatureSpace, libsvm export."""

from __future__ import annotations

import json

import lightgbm
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from ltr.features import CategoryEncoder, FeatureSpace, QuantileBinner, codes_to_csr, write_libsvm


def _random_codes(seed: int, n_rows: int, n_levels: list[int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.integers(0, k, n_rows) for k in n_levels]).astype(np.int32)


def _ref_dense(codes: np.ndarray, n_levels: list[int], values: np.ndarray | None, n_features: int) -> np.ndarray:
    """Slow reference: fill a dense matrix cell by cell."""
    out = np.zeros((codes.shape[0], n_features))
    for i in range(codes.shape[0]):
        offset = 0
        for j, k in enumerate(n_levels):
            out[i, offset + codes[i, j]] = 1.0
            offset += k
        if values is not None:
            for r in range(values.shape[1]):
                out[i, offset + r] = values[i, r]
    return out


def _click_data(seed: int, n_rows: int = 400):
    n_levels = [5, 3, 7]
    codes = _random_codes(seed, n_rows, n_levels)
    rng = np.random.default_rng(seed + 1)
    values = rng.normal(size=(n_rows, 2))
    logit = -1.0 + 0.8 * (codes[:, 0] == 2) - 0.5 * codes[:, 1] + 0.7 * values[:, 0]
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return codes, n_levels, values, y


# ----------------------------------------------------------------------- references
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_values", [False, True])
def test_matches_slow_reference_and_canonical_layout(seed, with_values):
    n_levels = [4, 1, 9, 2]
    codes = _random_codes(seed, 60, n_levels)
    values = np.random.default_rng(seed).normal(size=(60, 3)) if with_values else None
    if with_values:
        values[::5, 1] = 0.0  # explicit zeros keep the per-row entry count fixed
    X = codes_to_csr(codes, n_levels, values)
    width = 4 + (3 if with_values else 0)
    n_features = sum(n_levels) + (3 if with_values else 0)
    assert isinstance(X, sp.csr_matrix)
    assert X.shape == (60, n_features)
    np.testing.assert_array_equal(X.toarray(), _ref_dense(codes, n_levels, values, n_features))
    np.testing.assert_array_equal(X.indptr, np.arange(61) * width)
    assert X.nnz == 60 * width
    assert X.indices.dtype == np.int32 and X.indptr.dtype == np.int32
    assert X.has_canonical_format
    # The flags set by hand must agree with scipy's own computation.
    rows = np.split(X.indices, X.indptr[1:-1])
    assert all(np.all(np.diff(r) > 0) for r in rows)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_sklearn_one_hot_encoder(seed):
    n_levels = [6, 2, 11]
    codes = _random_codes(seed, 200, n_levels)
    ohe = OneHotEncoder(categories=[list(range(k)) for k in n_levels], sparse_output=True)
    expected = ohe.fit_transform(codes)
    X = codes_to_csr(codes, n_levels)
    assert (expected != X).nnz == 0
    np.testing.assert_array_equal(X.toarray(), expected.toarray())


def test_hand_computed_example():
    X = codes_to_csr([[1, 0], [0, 2]], n_levels=[2, 3], values=[[0.5], [1.5]])
    assert X.toarray().tolist() == [[0, 1, 1, 0, 0, 0.5], [1, 0, 0, 0, 1, 1.5]]
    assert X.indices.tolist() == [1, 2, 5, 0, 4, 5]


def test_values_only_and_empty_rows_and_extra_columns():
    X = codes_to_csr(np.empty((3, 0), dtype=np.int64), [], values=np.ones((3, 2)))
    assert X.shape == (3, 2) and X.nnz == 6
    empty = codes_to_csr(np.empty((0, 2), dtype=np.int32), [3, 4])
    assert empty.shape == (0, 7) and empty.nnz == 0
    padded = codes_to_csr([[0]], [2], n_features=10)
    assert padded.shape == (1, 10) and padded.toarray()[0, 0] == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_data_dtype(dtype):
    X = codes_to_csr([[0, 1]], [2, 2], values=[[0.25]], dtype=dtype)
    assert X.dtype == dtype


# ----------------------------------------------------------------------- index dtype
def test_int64_indices_when_nnz_exceeds_threshold():
    codes, n_levels, values, _ = _click_data(0, n_rows=50)
    # nnz = 50 * 5 = 250 > 249 -> int64; 250 <= 250 -> int32.
    big = codes_to_csr(codes, n_levels, values, int64_threshold=249)
    small = codes_to_csr(codes, n_levels, values, int64_threshold=250)
    assert big.indices.dtype == np.int64 and big.indptr.dtype == np.int64
    assert small.indices.dtype == np.int32 and small.indptr.dtype == np.int32
    assert (big != small).nnz == 0


def test_int64_when_n_features_exceeds_int32():
    # The column count alone can force int64 (hashing-sized spaces).
    X = codes_to_csr([[5]], [2**31 + 10])
    assert X.indices.dtype == np.int64 and X.shape == (1, 2**31 + 10)
    with pytest.raises(ValueError, match="index_dtype must be int64 when nnz or n_features exceeds"):
        codes_to_csr([[5]], [2**31 + 10], index_dtype=np.int32)


def test_forced_index_dtype():
    assert codes_to_csr([[0]], [1], index_dtype=np.int64).indices.dtype == np.int64
    with pytest.raises(ValueError, match=r"index_dtype must be None, numpy.int32 or numpy.int64"):
        codes_to_csr([[0]], [1], index_dtype=np.int16)


def test_scipy_downcasts_int64_copies_when_contents_fit():
    # Documents scipy's behaviour (see the ltr.sparse module docstring): the arrays we
    # set stay int64, but new matrices scipy builds from them are int32 when they fit.
    X = codes_to_csr([[0, 1], [1, 0]], [2, 2], index_dtype=np.int64)
    assert X.indices.dtype == np.int64
    assert X.copy().indices.dtype == np.int32
    rebuilt = sp.csr_matrix((X.data, X.indices, X.indptr), shape=X.shape)
    assert rebuilt.indices.dtype == np.int32
    assert sp.csr_matrix(X).indices.dtype == np.int64  # no copy, same arrays


def test_logistic_regression_accepts_int64_indices():
    codes, n_levels, values, y = _click_data(1)
    X64 = codes_to_csr(codes, n_levels, values, int64_threshold=0)
    X32 = codes_to_csr(codes, n_levels, values)
    assert X64.indices.dtype == np.int64
    lr64 = LogisticRegression(solver="lbfgs", max_iter=500).fit(X64, y)
    lr32 = LogisticRegression(solver="lbfgs", max_iter=500).fit(X32, y)
    assert X64.indices.dtype == np.int64  # fit leaves the caller's matrix alone
    np.testing.assert_allclose(lr64.coef_, lr32.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(lr64.predict_proba(X64), lr32.predict_proba(X32), rtol=1e-6)


def test_lightgbm_accepts_int64_indices():
    codes, n_levels, values, y = _click_data(2)
    X64 = codes_to_csr(codes, n_levels, values, int64_threshold=0)
    X32 = codes_to_csr(codes, n_levels, values)
    params = dict(n_estimators=10, num_leaves=7, min_child_samples=5, n_jobs=1, verbose=-1, deterministic=True)
    model64 = lightgbm.LGBMClassifier(**params).fit(X64, y)
    model32 = lightgbm.LGBMClassifier(**params).fit(X32, y)
    np.testing.assert_allclose(model64.predict_proba(X64), model32.predict_proba(X32))
    booster_pred = model64.booster_.predict(X64)
    np.testing.assert_allclose(booster_pred, model64.predict_proba(X64)[:, 1])
    assert X64.indices.dtype == np.int64


# ---------------------------------------------------------------------- bad input
_BAD_INPUT = [
    (
        {"codes": [[0, 3]], "n_levels": [2, 3]},
        ValueError,
        r"codes in column 1 must be in \[0, 3\). Got 3 at row 0 instead.",
    ),
    (
        {"codes": [[0, 0], [-1, 0]], "n_levels": [2, 3]},
        ValueError,
        r"codes in column 0 must be in \[0, 2\). Got -1 at row 1",
    ),
    (
        {"codes": [[0.0, 1.0]], "n_levels": [2, 3]},
        TypeError,
        "codes must be an integer array. Got dtype float64 instead.",
    ),
    ({"codes": [0, 1], "n_levels": [2, 3]}, ValueError, r"codes must be a 2-D array .* \(2,\)"),
    (
        {"codes": [[0, 1]], "n_levels": [2]},
        ValueError,
        r"n_levels must be a 1-D array with one entry per code column \(2\)",
    ),
    ({"codes": [[0]], "n_levels": [0]}, ValueError, r"n_levels must hold ints >= 1. Got \[0\]"),
    (
        {"codes": [[0]], "n_levels": [2], "values": [[np.nan]]},
        ValueError,
        "values must be finite. Got nan at row 0, value column 0",
    ),
    (
        {"codes": [[0]], "n_levels": [2], "values": [[1.0], [2.0]]},
        ValueError,
        r"values must be a 2-D array with 1 rows",
    ),
    (
        {"codes": [[0]], "n_levels": [2], "n_features": 1},
        ValueError,
        r"n_features must be an int in \[2, inf\). Got 1 instead.",
    ),
    (
        {"codes": np.empty((2, 0), dtype=int), "n_levels": []},
        ValueError,
        "codes and values must provide at least one column",
    ),
    (
        {"codes": [[0]], "n_levels": [2], "int64_threshold": 2**31},
        ValueError,
        r"int64_threshold must be an int in \[0, 2147483647\]",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), _BAD_INPUT)
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        codes_to_csr(**kwargs)


# --------------------------------------------------------------------- FeatureSpace
def test_feature_space_names_offsets_and_lookup():
    space = FeatureSpace(
        ["item_ctr_7d", "category"],
        [["bin0", "bin1", "<nan>"], ["bags", "shoes", "<unk>"]],
        ["cosine"],
    )
    assert space.feature_names == (
        "item_ctr_7d=bin0", "item_ctr_7d=bin1", "item_ctr_7d=<nan>",
        "category=bags", "category=shoes", "category=<unk>", "cosine",
    )
    assert space.n_levels.tolist() == [3, 3]
    assert space.offsets.tolist() == [0, 3]
    assert space.n_features == 7
    assert space.column_index("category=<unk>") == 5
    assert space.block("category") == slice(3, 6)
    with pytest.raises(ValueError, match=r"name must be a feature name of this space. Got 'category=hats' instead."):
        space.column_index("category=hats")
    with pytest.raises(ValueError, match="feature must be one of the code features"):
        space.block("cosine")


def test_feature_space_from_transformers_aligns_columns():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "item_ctr_7d": np.where(rng.random(300) < 0.1, np.nan, rng.beta(1, 20, 300)),
            "category": rng.choice(["shoes", "bags", "hats", "rare"], 300, p=[0.5, 0.3, 0.19, 0.01]),
        }
    )
    binner = QuantileBinner(n_bins=4).fit(frame[["item_ctr_7d"]])
    encoder = CategoryEncoder(min_count=5).fit(frame[["category"]])
    cosine = rng.uniform(-1, 1, (300, 1))
    space = FeatureSpace.from_transformers(binner, encoder, value_features=["cosine"])
    codes = np.hstack([binner.transform(frame[["item_ctr_7d"]]), encoder.transform(frame[["category"]])])
    X = space.to_csr(codes, cosine).toarray()
    assert X.shape == (300, space.n_features)
    shoes = space.column_index("category=shoes")
    np.testing.assert_array_equal(X[:, shoes], (frame["category"] == "shoes").to_numpy())
    nan_col = space.column_index("item_ctr_7d=<nan>")
    np.testing.assert_array_equal(X[:, nan_col], frame["item_ctr_7d"].isna().to_numpy())
    unk = space.column_index("category=<unk>")
    np.testing.assert_array_equal(X[:, unk], ~frame["category"].isin(encoder.categories_[0]).to_numpy())
    np.testing.assert_array_equal(X[:, space.column_index("cosine")], cosine[:, 0])
    assert X[:, space.block("item_ctr_7d")].sum(axis=1).tolist() == [1.0] * 300


def test_feature_space_errors():
    with pytest.raises(ValueError, match=r"feature names must be unique. Got 'a=x' more than once"):
        FeatureSpace(["a", "a"], [["x"], ["x"]])
    with pytest.raises(ValueError, match=r"feature names must be unique. Got 'a=<unk>'"):
        FeatureSpace(["a"], [["<unk>", "<unk>"]])
    with pytest.raises(ValueError, match=r"levels must have one list per code feature \(1\). Got 2"):
        FeatureSpace(["a"], [["x"], ["y"]])
    with pytest.raises(ValueError, match="levels must be non-empty for every code feature"):
        FeatureSpace(["a"], [[]])
    with pytest.raises(TypeError, match=r"levels\[0\] must hold only str. Got 1 \(int\)"):
        FeatureSpace(["a"], [[1]])
    with pytest.raises(TypeError, match="code_features must be a sequence of str"):
        FeatureSpace("a", [["x"]])
    space = FeatureSpace(["a"], [["x", "y"]], ["v"])
    with pytest.raises(ValueError, match=r"values must be given for the value features \['v'\]"):
        space.to_csr([[0]])
    with pytest.raises(ValueError, match=r"values must have 1 columns \(\['v'\]\). Got shape \(1, 2\)"):
        space.to_csr([[0]], [[1.0, 2.0]])
    with pytest.raises(TypeError, match=r"transformers\[0\] must have get_feature_names_out"):
        FeatureSpace.from_transformers(object())


def test_feature_space_state_round_trip():
    space = FeatureSpace(["a", "b"], [["x", "<unk>"], ["bin0", "<nan>"]], ["v"])
    meta, arrays = space.to_state()
    assert arrays == {}
    restored = FeatureSpace.from_state(json.loads(json.dumps(meta)), arrays)
    assert restored == space
    assert restored.feature_names == space.feature_names
    with pytest.raises(ValueError, match=r"state must have format 'ltr.FeatureSpace'"):
        FeatureSpace.from_state({"format": "nope"}, {})


# ------------------------------------------------------------------------- libsvm
@pytest.mark.parametrize("zero_based", [True, False])
@pytest.mark.parametrize("int64", [False, True])
def test_write_libsvm_round_trip(tmp_path, zero_based, int64):
    codes, n_levels, _, y = _click_data(3, n_rows=100)
    # Dyadic values print exactly with the writer's 16 significant digits.
    values = np.random.default_rng(3).integers(-64, 64, (100, 2)) / 8.0
    X = codes_to_csr(codes, n_levels, values, int64_threshold=0 if int64 else 2**31 - 1)
    path = tmp_path / "train.svm"
    write_libsvm(X, y, path, zero_based=zero_based, comment="space v1")
    text = path.read_text()
    assert text.startswith("#")
    X_back, y_back = load_svmlight_file(str(path), n_features=X.shape[1], zero_based=zero_based)
    np.testing.assert_array_equal(X_back.toarray(), X.toarray())
    np.testing.assert_array_equal(y_back, y)
    first_row = next(line for line in text.splitlines() if not line.startswith("#"))
    col = int(X.indices[0]) + (0 if zero_based else 1)
    assert first_row.startswith(f"{y[0]} {col}:1")


def test_write_libsvm_rejects_bad_labels(tmp_path):
    X = codes_to_csr([[0], [1]], [2])
    with pytest.raises(ValueError, match=r"y must be a 1-D array with one label per row of X \(2\). Got shape \(3,\)"):
        write_libsvm(X, [0, 1, 1], tmp_path / "a.svm")
    with pytest.raises(ValueError, match="y must hold finite numbers"):
        write_libsvm(X, [0, np.nan], tmp_path / "a.svm")
