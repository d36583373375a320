"""Tests for ltr.encoding.CategoryEncoder against OneHotEncoder and a slow reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder

from ltr.features._encoding import CategoryEncoder
from tests.ltr.sklearn_checks import sklearn_checks

# sklearn's checks feed numeric categorical data (small integers as float64, with the
# "categorical" tag); string columns are covered by the tests below.


@sklearn_checks([CategoryEncoder(), CategoryEncoder(min_count=3, missing="separate")])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------------- reference
def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _ref_fit(column, min_count: int) -> list:
    counts: dict = {}
    for value in column:
        if not _is_missing(value):
            counts[value] = counts.get(value, 0) + 1
    return sorted(v for v, c in counts.items() if c >= min_count)


def _ref_transform(column, categories: list, missing: str) -> list[int]:
    position = {v: i for i, v in enumerate(categories)}
    unknown = len(categories)
    out = []
    for value in column:
        if _is_missing(value):
            out.append(unknown if missing == "unknown" else unknown + 1)
        else:
            out.append(position.get(value, unknown))
    return out


def _random_string_column(rng, n: int, n_levels: int, missing_rate: float) -> np.ndarray:
    # Zipf-like frequencies so that some levels are rare.
    weights = 1.0 / np.arange(1, n_levels + 1) ** 1.3
    levels = np.array([f"lvl{i:03d}" for i in range(n_levels)], dtype=object)
    column = levels[rng.choice(n_levels, size=n, p=weights / weights.sum())]
    column[rng.random(n) < missing_rate] = None
    return column


def _random_int_column(rng, n: int, n_levels: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n_levels + 1) ** 1.3
    return rng.choice(np.arange(1000, 1000 + 7 * n_levels, 7), size=n, p=weights / weights.sum())


# ------------------------------------------------------------------- scikit-learn parity
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("min_count", [1, 3, 10])
def test_one_hot_matches_sklearn_infrequent_grouping(seed, min_count):
    rng = np.random.default_rng(seed)
    n = 400
    X = np.empty((n, 2), dtype=object)
    X[:, 0] = _random_string_column(rng, n, 40, missing_rate=0.0)
    X[:, 1] = _random_int_column(rng, n, 30)
    # One singleton level per column, so sklearn always has an infrequent column when
    # min_count > 1 (our <unk> slot always exists).
    X[0, 0], X[0, 1] = "singleton", 5
    X_new = X.copy()
    X_new[::9, 0] = "never-seen"
    X_new[::11, 1] = -1
    ours = CategoryEncoder(min_count=min_count).fit(X)
    codes = ours.transform(X_new)
    for j in range(X.shape[1]):
        if min_count == 1:
            ref = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        else:
            ref = OneHotEncoder(
                min_frequency=min_count, handle_unknown="infrequent_if_exist", sparse_output=False
            )
        block = ref.fit(X[:, [j]]).transform(X_new[:, [j]])
        infrequent = ref.infrequent_categories_[0] if min_count > 1 else None
        rare = set() if infrequent is None else set(infrequent.tolist())
        assert ours.categories_[j] == [c for c in ref.categories_[0].tolist() if c not in rare]
        if min_count > 1:
            # sklearn's single infrequent column comes last, like our <unk> slot.
            assert block.shape[1] == ours.n_codes_[j]
            np.testing.assert_array_equal(codes[:, j], block.argmax(axis=1))
        else:
            # sklearn ignores unknowns (all-zero row); ours sends them to <unk>.
            seen = block.sum(axis=1) == 1
            assert (~seen).any()
            np.testing.assert_array_equal(codes[seen, j], block[seen].argmax(axis=1))
            assert (codes[~seen, j] == ours.unknown_code_[j]).all()


# ---------------------------------------------------------------------- slow reference
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("min_count", [1, 2, 5])
@pytest.mark.parametrize("missing", ["unknown", "separate"])
def test_matches_slow_reference(seed, min_count, missing):
    rng = np.random.default_rng(seed)
    n = 300
    strings = _random_string_column(rng, n, 25, missing_rate=0.1)
    ints = _random_int_column(rng, n, 20).astype(object)
    floats = _random_int_column(rng, n, 15).astype(float) / 4
    floats[rng.random(n) < 0.1] = np.nan
    X = pd.DataFrame({"s": strings, "i": ints, "f": floats})
    encoder = CategoryEncoder(min_count=min_count, missing=missing).fit(X)
    X_new = pd.DataFrame(
        {
            "s": np.concatenate([strings[:100], np.array(["zz", None, pd.NA], dtype=object)]),
            "i": np.concatenate([ints[:100], np.array([-5, None, 1000], dtype=object)]),
            "f": np.concatenate([floats[:100], [0.125, np.nan, floats[0]]]),
        }
    )
    codes = encoder.transform(X_new)
    assert codes.dtype == np.int32
    for j, name in enumerate(X.columns):
        expected_cats = _ref_fit(X[name].tolist(), min_count)
        assert encoder.categories_[j] == expected_cats
        expected = _ref_transform(X_new[name].tolist(), expected_cats, missing)
        np.testing.assert_array_equal(codes[:, j], expected)
        assert codes[:, j].max() < encoder.n_codes_[j]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_levels", [1, 3, 40])
@pytest.mark.parametrize("missing", ["unknown", "separate"])
def test_encode_columns_of_repeated_strings_matches_slow_reference(seed, n_levels, missing):
    """A serving request's string columns hold a few distinct values, each looked up once."""
    rng = np.random.default_rng(seed)
    train = _random_string_column(rng, 400, 12, missing_rate=0.1)
    encoder = CategoryEncoder(min_count=3, missing=missing).fit(pd.DataFrame({"s": train}))
    pool = np.array([f"lvl{i:03d}" for i in range(n_levels - 1)] + ["unseen", None, np.nan, pd.NA], dtype=object)
    column = pool[rng.integers(0, pool.size, size=300)]
    codes = encoder.encode_columns([column])
    expected = _ref_transform(column.tolist(), encoder.categories_[0], missing)
    np.testing.assert_array_equal(codes[:, 0], expected)


@pytest.mark.parametrize(
    ("column", "error", "match"),
    [
        # Repeated values of mixed types: the column's own message, as without repeats.
        (np.array(["a"] * 50 + [5], dtype=object), TypeError, r"Got 5 \(int\) at row 50"),
        (np.array([None] * 10 + ["x"] * 50, dtype=object), TypeError,
         r"must hold number values as in fit. Got str values \(first: None\)"),
    ],
)
def test_encode_columns_of_repeated_values_keeps_errors(column, error, match):
    encoder = CategoryEncoder().fit(pd.DataFrame({"x0": [1, 2, 3]}))
    with pytest.raises(error, match=match):
        encoder.encode_columns([column])


# ------------------------------------------------------------------ hand-computed cases
def test_hand_computed_layout():
    X = pd.DataFrame({"category": ["shoes", "bags", "shoes", None, "hats", "shoes", "bags"]})
    encoder = CategoryEncoder(min_count=2).fit(X)
    assert encoder.categories_ == [["bags", "shoes"]]
    assert encoder.unknown_code_.tolist() == [2]
    assert encoder.missing_code_.tolist() == [2]
    assert encoder.n_codes_.tolist() == [3]
    assert encoder.n_rare_levels_.tolist() == [1]  # "hats"
    assert encoder.get_level_names() == [["bags", "shoes", "<unk>"]]
    new = pd.DataFrame({"category": ["shoes", "hats", "sandals", None, "bags"]})
    assert encoder.transform(new)[:, 0].tolist() == [1, 2, 2, 2, 0]


def test_hand_computed_separate_missing_slot():
    X = np.array([["a"], ["b"], [None], ["a"]], dtype=object)
    encoder = CategoryEncoder(missing="separate").fit(X)
    assert encoder.get_level_names() == [["a", "b", "<unk>", "<nan>"]]
    new = np.array([["b"], [np.nan], ["c"], [None]], dtype=object)
    assert encoder.transform(new)[:, 0].tolist() == [1, 3, 2, 3]


def test_numbers_compare_by_value_and_names_drop_dot_zero():
    # A pandas int column with a missing value arrives as float.
    X = pd.DataFrame({"brand": [3, 1, 3, None, 2]})
    encoder = CategoryEncoder().fit(X)
    assert encoder.categories_ == [[1.0, 2.0, 3.0]]
    assert encoder.get_level_names() == [["1", "2", "3", "<unk>"]]
    new = pd.DataFrame({"brand": np.array([2, 3, 4], dtype=np.int64)})
    assert encoder.transform(new)[:, 0].tolist() == [1, 2, 3]


def test_all_levels_rare_gives_only_unknown_slot():
    encoder = CategoryEncoder(min_count=5).fit([["a"], ["b"], ["a"]])
    assert encoder.categories_ == [[]]
    assert encoder.n_codes_.tolist() == [1]
    assert encoder.transform([["a"], ["z"]])[:, 0].tolist() == [0, 0]


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(["x", "y", None, "x"], dtype="string"),
        pd.Series(["x", "y", None, "x"], dtype="category"),
        pd.Series(["x", "y", None, "x"], dtype=object),
        pd.Series(np.array(["x", "y", "z", "x"])),
    ],
    ids=["string", "category", "object", "numpy-str"],
)
def test_pandas_string_like_dtypes(column):
    X = pd.DataFrame({"c": column})
    encoder = CategoryEncoder().fit(X)
    assert encoder.categories_[0][:2] == ["x", "y"]
    codes = encoder.transform(X)[:, 0]
    assert codes[0] == codes[3] == 0 and codes[1] == 1


def test_list_input_keeps_types_per_column():
    encoder = CategoryEncoder().fit([["a", 1], ["b", 2]])
    assert encoder.categories_ == [["a", "b"], [1, 2]]
    assert encoder.value_kinds_ == ["str", "number"]


# ---------------------------------------------------------------------- input handling
@pytest.mark.parametrize(
    ("column", "match"),
    [
        (
            np.array([1, "a", "b"], dtype=object),
            r"Column x0 must hold only strings or only numbers.*Got 1 \(int\) at row 0",
        ),
        (np.array(["a", "b", {"k": 1}], dtype=object), r"Got \{'k': 1\} \(dict\) at row 2"),
        (np.array([b"a", b"b"], dtype=object), r"Got b'a' \(bytes\) at row 0"),
    ],
)
def test_mixed_or_unsupported_types_rejected(column, match):
    with pytest.raises(TypeError, match=match):
        CategoryEncoder().fit(column.reshape(-1, 1))


def test_transform_rejects_kind_change():
    encoder = CategoryEncoder().fit(pd.DataFrame({"item_id": [1, 2, 3]}))
    with pytest.raises(TypeError, match=r"Column 'item_id' must hold number values as in fit. Got str values"):
        encoder.transform(pd.DataFrame({"item_id": ["1", "2"]}))


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"min_count": 0}, ValueError, r"min_count must be an int in \[1, inf\). Got 0 instead."),
        ({"min_count": 2.0}, TypeError, r"min_count must be an int. Got 2.0 instead."),
        ({"missing": "drop"}, ValueError, r"missing must be one of \['separate', 'unknown'\]. Got 'drop' instead."),
    ],
)
def test_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        CategoryEncoder(**params).fit([["a"]])


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (np.empty((0, 1), dtype=object), ValueError, "0 sample"),
        (pd.DataFrame({"a": pd.Series([], dtype=object)}), ValueError, "X must have at least 1 row"),
        (np.array(["a", "b"], dtype=object), ValueError, "Expected 2D array, got 1D array"),
    ],
)
def test_bad_shapes(X, error, match):
    with pytest.raises(error, match=match):
        CategoryEncoder().fit(X)


def test_transform_does_not_change_state():
    encoder = CategoryEncoder(min_count=2).fit([["a"], ["a"], ["b"]])
    before = encoder.to_state()
    encoder.transform([["c"], ["a"]])
    assert encoder.to_state() == before


# ------------------------------------------------------------------------ serialisation
@pytest.mark.parametrize("missing", ["unknown", "separate"])
def test_state_json_round_trip(missing):
    rng = np.random.default_rng(5)
    X = pd.DataFrame(
        {
            "s": _random_string_column(rng, 200, 20, 0.1),
            "i": _random_int_column(rng, 200, 10),
            "f": np.where(rng.random(200) < 0.1, np.nan, rng.integers(0, 5, 200) / 2),
        }
    )
    encoder = CategoryEncoder(min_count=3, missing=missing).fit(X)
    meta, arrays = encoder.to_state()
    assert arrays == {}
    state = json.loads(json.dumps(meta))
    restored = CategoryEncoder.from_state(state, arrays)
    assert restored.categories_ == encoder.categories_
    assert type(state["categories"][1][0]) is int and type(state["categories"][2][0]) is float
    np.testing.assert_array_equal(restored.transform(X), encoder.transform(X))
    assert restored.get_level_names() == encoder.get_level_names()
    assert restored.feature_names_in_.tolist() == ["s", "i", "f"]


def test_from_state_rejects_bad_state():
    state, _ = CategoryEncoder().fit([["a"], ["b"]]).to_state()
    with pytest.raises(ValueError, match=r"state must have format 'ltr.CategoryEncoder'"):
        CategoryEncoder.from_state({**state, "version": 99}, {})
    with pytest.raises(ValueError, match=r"meta\['categories'\]\[0\] must be distinct"):
        CategoryEncoder.from_state({**state, "categories": [["a", "a"]]}, {})
    with pytest.raises(TypeError, match=r"state must be a dict. Got list instead."):
        CategoryEncoder.from_state([], {})
