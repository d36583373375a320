"""Tests for ltr.binning.QuantileBinner against KBinsDiscretizer and a slow reference."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import KBinsDiscretizer

from ltr.features._binning import BinCollapseWarning, QuantileBinner
from tests.ltr.sklearn_checks import sklearn_checks

METHODS = ["averaged_inverted_cdf", "inverted_cdf"]


# ----------------------------------------------------------------------------- reference
def _ref_quantile(sorted_values: list[float], level_num: int, level_den: int, method: str) -> float:
    """Quantile straight from the definition, positions as exact fractions."""
    m = len(sorted_values)
    # h = m * level_num / level_den; 1-based rank ceil(h), at least 1.
    num = m * level_num
    rank = max(math.ceil(num / level_den) if num % level_den else num // level_den, 1)
    if method == "averaged_inverted_cdf" and num % level_den == 0 and 0 < level_num < level_den:
        h = num // level_den
        a, b = sorted_values[h - 1], sorted_values[h]
        return b - (b - a) * 0.5
    return sorted_values[rank - 1]


def _ref_fit_column(column: np.ndarray, n_bins: int, method: str) -> list[float]:
    values = sorted(float(v) for v in column if not math.isnan(v))
    raw = [_ref_quantile(values, i, n_bins, method) for i in range(n_bins + 1)]
    edges: list[float] = []
    for e in raw:
        if not edges or e != edges[-1]:
            edges.append(e)
    if len(edges) == 1:
        return [edges[0], edges[0]]
    # Repeatedly drop the lower edge of the first empty inner bin.
    while True:
        inner = edges[1:-1]
        counts = [0] * (len(inner) + 1)
        for v in values:
            counts[sum(1 for e in inner if e <= v)] += 1
        empty = [b for b in range(1, len(counts)) if counts[b] == 0]
        if not empty:
            return edges
        del edges[empty[0]]


def _ref_code(value: float, edges: list[float]) -> int:
    n_bins = len(edges) - 1
    if math.isnan(value):
        return n_bins
    return sum(1 for e in edges[1:-1] if e <= value)


def _quiet_fit(binner: QuantileBinner, X) -> QuantileBinner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinCollapseWarning)
        return binner.fit(X)


def _tied_data(seed: int, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    zeros = np.where(rng.random(n) < 0.6, 0.0, rng.exponential(size=n))
    small_ints = rng.integers(0, 4, n).astype(float)
    continuous = rng.normal(size=n)
    with_nan = rng.normal(size=n)
    with_nan[rng.random(n) < 0.2] = np.nan
    constant = np.full(n, 3.5)
    point_mass_top = np.where(rng.random(n) < 0.5, 9.0, rng.uniform(0, 9, n))
    return np.column_stack([zeros, small_ints, continuous, with_nan, constant, point_mass_top])


# ---------------------------------------------------------------------- estimator checks
@sklearn_checks(
    [QuantileBinner(), QuantileBinner(n_bins=3, quantile_method="inverted_cdf")]
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinCollapseWarning)
        check(estimator)


# ------------------------------------------------------------------- scikit-learn parity
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("n_rows", "n_bins"), [(1000, 10), (37, 5), (100, 7), (50, 3), (8, 2)])
def test_matches_kbins_discretizer_without_ties(method, n_rows, n_bins):
    rng = np.random.default_rng(n_rows * 31 + n_bins)
    X = rng.normal(size=(n_rows, 4)) * [1, 10, 0.01, 1000]
    X_new = rng.normal(size=(500, 4)) * [3, 30, 0.03, 3000]  # includes out-of-range rows
    ours = QuantileBinner(n_bins=n_bins, quantile_method=method).fit(X)
    ref = KBinsDiscretizer(
        n_bins=n_bins, encode="ordinal", strategy="quantile", quantile_method=method
    ).fit(X)
    for e_ours, e_ref in zip(ours.bin_edges_, ref.bin_edges_, strict=True):
        np.testing.assert_array_equal(e_ours, e_ref)
    np.testing.assert_array_equal(ours.transform(X), ref.transform(X).astype(np.int32))
    np.testing.assert_array_equal(ours.transform(X_new), ref.transform(X_new).astype(np.int32))


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        # Whole positions 1..6 -> midpoints; one value per bin.
        ("averaged_inverted_cdf", [0.0, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.0]),
        # Ranks ceil(h) = 1, 1, 2, ..., 7: the first inner edge equals the minimum.
        ("inverted_cdf", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ],
)
def test_exact_positions_where_numpy_levels_round_up(method, expected):
    # numpy.percentile turns level 100/7 into position 7 * 0.142857... = 1.0000000000000002
    # and moves every such edge up one order statistic; exact positions do not.
    X = np.arange(7, dtype=float).reshape(-1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = QuantileBinner(n_bins=7, quantile_method=method).fit(X)
        ref = KBinsDiscretizer(
            n_bins=7, encode="ordinal", strategy="quantile", quantile_method=method
        ).fit(X)
    np.testing.assert_array_equal(ours.bin_edges_[0], expected)
    assert not np.array_equal(ours.bin_edges_[0], ref.bin_edges_[0])


# ---------------------------------------------------------------------- slow reference
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_bins", [2, 4, 10])
@pytest.mark.parametrize("method", METHODS)
def test_matches_slow_reference_with_ties_and_nan(seed, n_bins, method):
    X = _tied_data(seed)
    binner = _quiet_fit(QuantileBinner(n_bins=n_bins, quantile_method=method), X)
    rng = np.random.default_rng(seed + 100)
    X_new = np.vstack([X[:50], rng.normal(scale=20, size=(40, X.shape[1]))])
    X_new[::7, 2] = np.nan
    codes = binner.transform(X_new)
    for j in range(X.shape[1]):
        edges = _ref_fit_column(X[:, j], n_bins, method)
        np.testing.assert_array_equal(binner.bin_edges_[j], edges)
        expected = [_ref_code(float(v), edges) for v in X_new[:, j]]
        np.testing.assert_array_equal(codes[:, j], expected)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("method", METHODS)
def test_no_empty_bins_on_training_data(seed, method):
    X = _tied_data(seed, n=int(np.random.default_rng(seed).integers(5, 400)))
    binner = _quiet_fit(QuantileBinner(n_bins=10, quantile_method=method), X)
    codes = binner.transform(X)
    for j in range(X.shape[1]):
        finite = ~np.isnan(X[:, j])
        counts = np.bincount(codes[finite, j], minlength=binner.n_bins_[j])
        assert counts.size == binner.n_bins_[j]
        assert (counts > 0).all()
        assert (codes[~finite, j] == binner.n_bins_[j]).all()
        # Kept and dropped edges together are the n_bins + 1 raw quantiles.
        assert binner.bin_edges_[j].size + binner.collapsed_edges_[j].size == 11


def test_averaged_edges_between_ties_do_not_leave_empty_bins():
    # Positions 1, 2, 3 are whole: edges (0+2)/2 = 1, (2+2)/2 = 2, (2+3)/2 = 2.5, all
    # distinct, yet no value lies in [1, 2); its lower edge 1.0 is dropped.
    X = np.array([[0.0], [2.0], [2.0], [3.0]])
    with pytest.warns(BinCollapseWarning, match=r"x0: 3"):
        binner = QuantileBinner(n_bins=4).fit(X)
    np.testing.assert_array_equal(binner.bin_edges_[0], [0.0, 2.0, 2.5, 3.0])
    np.testing.assert_array_equal(binner.collapsed_edges_[0], [1.0])
    np.testing.assert_array_equal(binner.transform(X)[:, 0], [0, 1, 1, 2])


# ------------------------------------------------------------------ hand-computed cases
def test_hand_computed_sixty_percent_zeros():
    X = np.array([0, 0, 0, 0, 0, 0, 1, 2, 3, 4], dtype=float).reshape(-1, 1)
    with pytest.warns(BinCollapseWarning, match=r"1 feature\(s\).*x0: 2"):
        binner = QuantileBinner(n_bins=5, quantile_method="inverted_cdf").fit(X)
    # Positions 2, 4, 6, 8 give x(2)=0, x(4)=0, x(6)=0, x(8)=2; with min 0 and max 4
    # the unique edges are [0, 2, 4]: bins [0, 2) and [2, 4].
    np.testing.assert_array_equal(binner.bin_edges_[0], [0.0, 2.0, 4.0])
    assert binner.n_bins_.tolist() == [2]
    np.testing.assert_array_equal(binner.collapsed_edges_[0], [0.0, 0.0, 0.0])
    codes = binner.transform(np.array([[-1.0], [0.0], [1.9], [2.0], [100.0], [np.nan]]))
    assert codes[:, 0].tolist() == [0, 0, 0, 1, 1, 2]


def test_hand_computed_averaged_edges():
    X = np.array([[1.0], [2.0], [3.0], [4.0]])
    binner = QuantileBinner(n_bins=2).fit(X)
    np.testing.assert_array_equal(binner.bin_edges_[0], [1.0, 2.5, 4.0])
    assert binner.transform(np.array([[2.5], [2.4999], [np.nan]]))[:, 0].tolist() == [1, 0, 2]


def test_constant_feature_gets_one_bin_and_nan_code():
    X = np.column_stack([np.full(20, 7.0), np.arange(20.0)])
    with pytest.warns(BinCollapseWarning, match="x0: 1"):
        binner = QuantileBinner(n_bins=4).fit(X)
    np.testing.assert_array_equal(binner.bin_edges_[0], [7.0, 7.0])
    assert binner.n_bins_.tolist() == [1, 4]
    assert binner.n_codes_.tolist() == [2, 5]
    codes = binner.transform(np.array([[-3.0, 0.0], [99.0, 0.0], [np.nan, np.nan]]))
    assert codes.tolist() == [[0, 0], [0, 0], [1, 4]]


def test_single_row_fit():
    with pytest.warns(BinCollapseWarning):
        binner = QuantileBinner(n_bins=3).fit(np.array([[1.0]]))
    assert binner.n_bins_.tolist() == [1]


def test_nan_code_is_reserved_without_nan_in_training():
    binner = QuantileBinner(n_bins=3).fit(np.arange(30.0).reshape(-1, 1))
    assert binner.transform(np.array([[np.nan]])).tolist() == [[3]]
    assert binner.get_level_names() == [["bin0", "bin1", "bin2", "<nan>"]]


# ---------------------------------------------------------------------- input handling
def test_dataframe_input_names_and_output_dtype():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"item_ctr_7d": rng.random(50), "price": rng.lognormal(size=50)})
    binner = QuantileBinner(n_bins=4).fit(df)
    assert binner.feature_names_in_.tolist() == ["item_ctr_7d", "price"]
    assert binner.get_feature_names_out().tolist() == ["item_ctr_7d", "price"]
    codes = binner.transform(df)
    assert codes.dtype == np.int32 and codes.shape == (50, 2)
    plain = QuantileBinner(n_bins=4).fit(df.to_numpy())
    assert not hasattr(plain, "feature_names_in_")
    np.testing.assert_array_equal(codes, plain.transform(df.to_numpy()))


def test_nullable_float_dataframe_na_goes_to_nan_code():
    df = pd.DataFrame({"x": pd.array([0.1, None, 0.3, 0.4, 0.5], dtype="Float64")})
    binner = QuantileBinner(n_bins=2).fit(df)
    # Finite values 0.1, 0.3, 0.4, 0.5: the median edge is (0.3 + 0.4) / 2.
    assert binner.transform(df)[:, 0].tolist() == [0, 2, 0, 1, 1]


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"n_bins": 1}, ValueError, r"n_bins must be an int in \[2, inf\). Got 1 instead."),
        ({"n_bins": 2.5}, TypeError, r"n_bins must be an int. Got 2.5 instead."),
        ({"n_bins": True}, TypeError, r"n_bins must be an int. Got True instead."),
        ({"quantile_method": "linear"}, ValueError, r"quantile_method must be one of .* Got 'linear' instead."),
    ],
)
def test_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        QuantileBinner(**params).fit(np.arange(10.0).reshape(-1, 1))


def test_all_nan_feature_is_rejected_by_name():
    df = pd.DataFrame({"ok": [1.0, 2.0, 3.0], "dead": [np.nan] * 3})
    with pytest.raises(ValueError, match=r"Got only NaN in feature\(s\) 'dead'"):
        QuantileBinner(n_bins=2).fit(df)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_values_rejected(bad):
    X = np.array([[1.0], [2.0], [bad]])
    with pytest.raises(ValueError, match="infinity"):
        QuantileBinner(n_bins=2).fit(X)


def test_empty_input_rejected():
    with pytest.raises(ValueError, match="0 sample"):
        QuantileBinner().fit(np.empty((0, 2)))


def test_transform_does_not_change_state_and_wrong_width_rejected():
    binner = QuantileBinner(n_bins=3).fit(np.random.default_rng(0).random((30, 2)))
    before = binner.to_state()
    binner.transform(np.random.default_rng(1).random((10, 2)))
    assert binner.to_state() == before
    with pytest.raises(ValueError, match="X has 3 features, but QuantileBinner is expecting 2"):
        binner.transform(np.zeros((4, 3)))


# ------------------------------------------------------------------------ serialisation
@pytest.mark.parametrize("as_frame", [False, True])
def test_state_json_round_trip(as_frame):
    X = _tied_data(7)
    data = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])]) if as_frame else X
    binner = _quiet_fit(QuantileBinner(n_bins=6), data)
    meta, arrays = binner.to_state()
    assert arrays == {}
    state = json.loads(json.dumps(meta))
    restored = QuantileBinner.from_state(state, arrays)
    X_new = np.random.default_rng(8).normal(scale=5, size=(200, X.shape[1]))
    X_new[::5] = np.nan
    new = pd.DataFrame(X_new, columns=data.columns) if as_frame else X_new
    np.testing.assert_array_equal(restored.transform(new), binner.transform(new))
    for a, b in zip(restored.bin_edges_, binner.bin_edges_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(isinstance(v, float) for edges in state["bin_edges"] for v in edges)
    assert restored.get_params() == binner.get_params()


def test_from_state_rejects_bad_state():
    state, _ = QuantileBinner(n_bins=3).fit(np.arange(9.0).reshape(-1, 1)).to_state()
    with pytest.raises(ValueError, match=r"state must have format 'ltr.QuantileBinner'"):
        QuantileBinner.from_state({**state, "format": "other"}, {})
    with pytest.raises(ValueError, match=r"meta\['bin_edges'\]\[0\] must be .* increasing"):
        QuantileBinner.from_state({**state, "bin_edges": [[3.0, 1.0, 2.0]]}, {})
    with pytest.raises(ValueError, match=r"state must have keys \['collapsed_edges'\]"):
        QuantileBinner.from_state({k: v for k, v in state.items() if k != "collapsed_edges"}, {})
