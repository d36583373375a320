"""The aggregated tables of the readout: tables of random partitions add up to the table of the
whole frame, and AUC, GAUC and calibration from count tables equal scikit-learn and the
row-level metrics."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from eval.ab import ORDER, UnitDays
from eval.metrics import calibration_table, expected_calibration_error, gauc, logloss, normalized_entropy
from eval.online_offline import (
    auc_rows,
    gauc_entry,
    reduce_user_counts,
    score_counts,
    user_aucs,
    user_score_counts,
)
from eval.report._scores import calibration_section
from eval.report._tables import ReadoutTables, combine_partials, partial_tables
from ltr.metrics._auc_kernels import auc_counts

T0 = 20_000


def _samples(seed: int, n_requests: int = 400, n_users: int = 60, levels: int = 12) -> pd.DataFrame:
    """Exposure rows in the samples' order, with tied timestamps, tied scores, missing scores and
    missing segment values; buckets per user."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, n_users, n_requests)
    ts = T0 * 86_400 + np.sort(rng.integers(0, 5 * 86_400, n_requests) // 600 * 600)
    per = rng.integers(1, 8, n_requests)
    rows = np.repeat(np.arange(n_requests), per)
    frame = pd.DataFrame({
        "request_id": rows * 7 + 3, "user_id": user[rows], "ts": ts[rows],
        "position": np.concatenate([np.arange(k) for k in per]),
    })
    frame["item_id"] = rng.integers(0, 50, len(frame))
    frame["day"] = (frame["ts"] // 86_400).astype(np.int64)
    frame["bucket"] = np.array(["control", "treatment", "t2"], dtype=object)[frame["user_id"].to_numpy() % 3]
    frame["click"] = (rng.random(len(frame)) < 0.2).astype(np.int64)
    frame["order"] = frame["click"] * (rng.random(len(frame)) < 0.3)
    score = rng.integers(0, levels, len(frame)) / levels * 0.98 + 0.01
    frame["rank_score"] = np.where(rng.random(len(frame)) < 0.05, np.nan, score).astype(np.float32)
    frame["device"] = np.where(rng.random(len(frame)) < 0.1, None, rng.choice(["ios", "android", "web"], len(frame)))
    return frame.sort_values(list(ORDER), kind="stable").reset_index(drop=True)


def _random_parts(frame: pd.DataFrame, seed: int, k: int) -> list[pd.DataFrame]:
    """Rows dealt to ``k`` parts at random (each part in its own order, shuffled part order)."""
    rng = np.random.default_rng(seed)
    part = rng.integers(0, k, len(frame))
    return [frame.loc[part == p].sample(frac=1.0, random_state=p) for p in rng.permutation(k)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("unit", "segment"), [("user", None), ("request", "device"), ("user", "device")])
@pytest.mark.parametrize("k", [2, 5])
def test_tables_of_random_partitions_add_up_to_the_whole(seed, unit, segment, k):
    frame = _samples(seed)
    whole = ReadoutTables.of(frame, unit, segment)
    parts = [partial_tables(p, unit, segment) for p in _random_parts(frame, seed, k)]
    # Added up in one go or pairwise in a tree, in any grouping: the same tables.
    summed = combine_partials(parts, unit, segment)
    tree = combine_partials([combine_partials(parts[:1], unit, segment), combine_partials(parts[1:], unit, segment)],
                            unit, segment)
    for total in (summed, tree):
        pd.testing.assert_frame_equal(total["units"], whole.units.frame)
        pd.testing.assert_frame_equal(total["scores"], score_counts(frame, "rank_score"))
    summed = ReadoutTables(UnitDays(summed["units"], unit, segment))
    # Independent references: per-unit sums and the first-appearance order from the rows.
    key = f"{unit}_id"
    expected = frame.groupby(key).agg(exposures=("click", "size"), clicks=("click", "sum"), orders=("order", "sum"))
    got = summed.units.unit_sums().set_index(key)[["exposures", "clicks", "orders"]]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    first = frame.drop_duplicates(key)[key].to_numpy()
    np.testing.assert_array_equal(summed.units.first_order().index.to_numpy(), first)
    assert len(summed.units.frame) < len(frame)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_counts_add_up_and_have_one_row_per_score(seed):
    frame = _samples(seed)
    cells = score_counts(frame, "rank_score")
    assert not cells.duplicated(["day", "bucket", "score"]).any()
    rows = frame.dropna(subset=["rank_score"])
    assert cells["n"].sum() == len(rows) and cells["positives"].sum() == rows["click"].sum()
    by = rows.groupby(["day", "bucket", rows["rank_score"].astype(np.float64)]).size()
    np.testing.assert_array_equal(cells["n"].to_numpy(), by.to_numpy())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("levels", [2, 7, 1000])
def test_auc_from_counts_equals_sklearn_with_ties(seed, levels):
    rng = np.random.default_rng(seed)
    y = (rng.random(3000) < 0.15).astype(np.int64)
    s = rng.integers(0, levels, 3000) / levels + 0.3 * y * rng.random(3000)
    values, inverse = np.unique(s, return_inverse=True)
    pos = np.bincount(inverse, weights=y, minlength=values.size).astype(np.int64)
    neg = np.bincount(inverse, minlength=values.size) - pos
    assert auc_counts(pos, neg) == pytest.approx(roc_auc_score(y, s), rel=1e-12)


def test_auc_from_counts_single_class_is_nan():
    assert math.isnan(auc_counts(np.array([0, 0]), np.array([3, 1])))


@pytest.mark.parametrize("seed", range(3))
def test_auc_rows_equal_sklearn_per_segment(seed):
    frame = _samples(seed)
    table = auc_rows({"online_auc": score_counts(frame, "rank_score")}).set_index(["segment", "value"])
    rows = frame.dropna(subset=["rank_score"])
    assert table.loc[("all", "all"), "online_auc"] == pytest.approx(roc_auc_score(rows["click"], rows["rank_score"]))
    for bucket, part in rows.groupby("bucket"):
        assert table.loc[("bucket", bucket), "online_auc"] == pytest.approx(
            roc_auc_score(part["click"], part["rank_score"]), rel=1e-12)
        assert table.loc[("bucket", bucket), "n"] == len(part)
    assert table.loc[("day", slice(None)), "n"].sum() == len(rows)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 3])
def test_user_aucs_equal_a_per_user_reference(seed, k):
    frame = _samples(seed, levels=5)
    counts = reduce_user_counts([user_score_counts(p, "rank_score") for p in _random_parts(frame, seed, k)])
    users = user_aucs(counts).set_index("user_id")
    rows = frame.dropna(subset=["rank_score"])
    for user, part in rows.groupby("user_id"):
        assert users.loc[user, "n"] == len(part)
        if part["click"].nunique() == 2:
            pos = int(part["click"].sum())
            value = users.loc[user, "twice_u"] / (2.0 * pos * (len(part) - pos))
            assert value == pytest.approx(roc_auc_score(part["click"], part["rank_score"]), rel=1e-12)
    entry = gauc_entry(users.reset_index())
    reference = gauc(rows["click"], rows["rank_score"], rows["user_id"])
    assert entry["gauc"] == reference.value
    assert entry["users_used"] == reference.n_groups_used
    assert entry["users_skipped_one_class"] == reference.n_groups_skipped


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("levels", [3, 12, 100_000])
def test_calibration_from_counts_equals_the_row_metrics(seed, levels):
    frame = _samples(seed, levels=levels)
    out = calibration_section(score_counts(frame, "rank_score"), "online")
    rows = frame.dropna(subset=["rank_score"])
    y, p = rows["click"].to_numpy(), rows["rank_score"].to_numpy(np.float64)
    expected = calibration_table(y, p, n_bins=10).reset_index()
    got = pd.DataFrame(out["table"])
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_dtype=False, rtol=1e-12)
    assert out["n"] == len(rows) and out["mean_predicted"] == pytest.approx(p.mean(), rel=1e-12)
    assert out["ece"] == pytest.approx(expected_calibration_error(y, p, n_bins=10), rel=1e-12)
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    assert out["logloss"] == pytest.approx(logloss(y, clipped), rel=1e-12)
    assert out["normalized_entropy"] == pytest.approx(normalized_entropy(y, clipped), rel=1e-12)
    by = rows.assign(p=p).groupby("bucket")["p"].mean()
    assert [r["mean_predicted"] for r in out["by_bucket"]] == pytest.approx(by.to_numpy().tolist(), rel=1e-12)


def test_unit_days_window_and_buckets():
    frame = _samples(3)
    table = UnitDays.of(frame, "user", order=ORDER)
    lo, hi = table.days()
    assert (lo, hi) == (frame["day"].min(), frame["day"].max())
    window = table.where(table.frame["day"].to_numpy() > lo)
    assert window.n_exposures() == int((frame["day"] > lo).sum())
    assert window.known_buckets() == ["control", "t2", "treatment"]
    assert table.in_buckets(["t2"]).known_buckets() == ["t2"]


@pytest.mark.parametrize("seed", range(2))
def test_score_summary_of_a_window_equals_the_summary_of_its_rows(seed):
    frame = _samples(seed)
    lo = int(frame["day"].min()) + 1
    hi = lo + 2
    tables = ReadoutTables.of(frame, "user")
    got = tables.scores((lo, hi))
    rows = frame.loc[frame["day"].between(lo, hi)]
    expected = ReadoutTables.of(rows, "user").scores((lo, hi))
    pd.testing.assert_frame_equal(got.auc, expected.auc)
    assert got.calibration == expected.calibration and got.calibration["n"] == rows["rank_score"].notna().sum()
    pd.testing.assert_frame_equal(tables.user_aucs((lo, hi)), user_aucs(user_score_counts(rows, "rank_score")))


@pytest.mark.parametrize("seed", [0, 1])
def test_calibration_does_not_depend_on_the_blas_threads(seed):
    # A Dask worker runs BLAS on one thread, the client on several: a BLAS dot would sum in
    # another order there (the engines' log loss differed in the last digits on 2M rows).
    rng = np.random.default_rng(seed)
    n = 300_000
    cells = pd.DataFrame({"day": np.full(n, T0), "bucket": np.where(rng.random(n) < 0.5, "a", "b"),
                          "score": rng.random(n), "n": rng.integers(1, 4, n)})
    cells["positives"] = rng.binomial(cells["n"], 0.1)
    with threadpool_limits(limits=1, user_api="blas"):
        one = calibration_section(cells, "online")
    assert calibration_section(cells, "online") == one
