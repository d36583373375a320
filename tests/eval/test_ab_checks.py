"""Tests for eval.ab's input checks: every bad argument or row is named."""
from __future__ import annotations

import pandas as pd
import pytest

from eval.ab import compare_all, compare_buckets, unit_sums

# ----------------------------------------------------------------------------- bad input


def _small_samples():
    return pd.DataFrame({"request_id": [1, 2, 3, 4], "user_id": ["u1", "u1", "u2", "u3"],
                         "bucket": ["A", "A", "B", "B"], "click": [0, 1, 1, 0],
                         "order": [0, 0, 1, 0], "day": [4, 4, 4, 5]})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"control": "Z"}, ValueError,
         r"control must be one of the buckets \['A', 'B'\]\. Got 'Z'"),
        ({"treatment": "C"}, ValueError, r"treatment must be one of the buckets .*Got 'C'"),
        ({"treatment": "A"}, ValueError, "treatment must differ from control"),
        ({"unit": "session"}, ValueError,
         r"unit must be one of \['request', 'user'\]\. Got 'session'"),
        ({"alpha": 1.5}, ValueError, r"alpha must be a float in \(0, 1\)\. Got 1.5"),
        ({"adjust": "bonferroni"}, ValueError, "adjust must be one of .*Got 'bonferroni'"),
        ({"expected_split": {"A": 1}}, ValueError, "expected_split must give a weight"),
        ({"expected_split": {"A": 1, "B": 1, "Q": 1}}, ValueError, "expected_split must give"),
    ],
)
def test_compare_rejects_bad_arguments(kwargs, error, match):
    args = {"control": "A", "treatment": "B"} | kwargs
    with pytest.raises(error, match=match):
        compare_buckets(_small_samples(), **args)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"\(missing \['order', 'day'\]\)"):
        compare_buckets(_small_samples().drop(columns=["order", "day"]), "A", "B")
    with pytest.raises(ValueError, match=r"pre_samples must have columns .*\(missing \['click'\]\)"):
        compare_buckets(_small_samples().assign(day=9), "A", "B",
                        pre_samples=_small_samples().drop(columns=["click"]))


def test_user_in_two_buckets_is_named():
    samples = _small_samples()
    samples.loc[3, "user_id"] = "u1"  # u1 now also in B
    with pytest.raises(ValueError, match=r"user_id='u1' in buckets \['A', 'B'\]"):
        compare_buckets(samples, "A", "B")
    # Assignment per request allows a user in both buckets.
    assert compare_buckets(samples, "A", "B", unit="request").unit == "request"
    samples.loc[3, "request_id"] = 1
    with pytest.raises(ValueError, match=r"per request .*request_id=1 in buckets"):
        unit_sums(samples, unit="request")


def test_bucket_without_users_is_rejected():
    samples = _small_samples()
    samples["bucket"] = pd.Categorical(samples["bucket"], categories=["A", "B", "C"])
    with pytest.raises(ValueError, match="Got 'C', which has no users"):
        compare_buckets(samples, "A", "C")
    with pytest.raises(ValueError, match="Got 'C', which has no users"):
        compare_all(samples)
    assert compare_buckets(samples, "A", "B").table["n_treatment"].iloc[0] == 2


@pytest.mark.parametrize(
    ("column", "value", "error", "match"),
    [
        ("click", 2, ValueError, r"samples\.click must be 0 or 1.*row 1 has click=2"),
        ("order", -1, ValueError, r"samples\.order must be 0 or 1"),
        ("user_id", None, ValueError, r"samples\.user_id must not be missing.*row 1"),
        ("bucket", None, ValueError, r"samples\.bucket must not be missing"),
        ("day", pd.NA, ValueError, r"samples\.day must not be missing.*row 1"),
    ],
)
def test_bad_values_name_the_row(column, value, error, match):
    samples = _small_samples()
    if value is None:
        samples[column] = samples[column].astype(object)
    elif value is pd.NA:
        samples[column] = samples[column].astype("Int64")
    samples.loc[1, column] = value
    with pytest.raises(error, match=match):
        compare_buckets(samples, "A", "B")


def test_bad_types_are_rejected():
    with pytest.raises(TypeError, match=r"samples must be a pandas DataFrame\. Got dict"):
        unit_sums({"user_id": [1]})
    with pytest.raises(TypeError, match=r"samples\.bucket must hold strings"):
        unit_sums(_small_samples().assign(bucket=[1, 1, 2, 2]))
    with pytest.raises(TypeError, match=r"samples\.day must be an integer column"):
        unit_sums(_small_samples().assign(day=[0.5, 1.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match=r"samples\.click must be a 0/1 integer column"):
        unit_sums(_small_samples().assign(click=["0", "1", "1", "0"]))
    with pytest.raises(ValueError, match="at least one row"):
        unit_sums(_small_samples().iloc[:0])
    with pytest.raises(ValueError, match="at least two buckets"):
        compare_all(_small_samples().assign(bucket="A"))


def test_bad_pre_period_is_rejected():
    samples = _small_samples().assign(day=10)
    with pytest.raises(ValueError, match=r"end before the experiment's first day 10.*day=10"):
        compare_buckets(samples, "A", "B", pre_samples=samples.assign(day=[3, 4, 5, 10]))
    with pytest.raises(ValueError, match="unit must be 'user' when pre_samples is given"):
        compare_buckets(samples, "A", "B", unit="request", pre_samples=samples.assign(day=3))
    with pytest.raises(ValueError, match="must share users with samples"):
        compare_buckets(samples, "A", "B",
                        pre_samples=samples.assign(day=3, user_id=["x", "y", "z", "w"]))
