"""Tests for eval.online_offline: AUC per day/bucket on the same rows, and GAUC."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from eval.online_offline import auc_table, gauc_summary
from ltr.logs import format_day, parse_day

DAY0 = parse_day("2026-01-05")


def _samples(seed: int, n: int = 600, nan_share: float = 0.1) -> pd.DataFrame:
    """Random exposure-level samples with ties in both scores and missing offline scores."""
    rng = np.random.default_rng(seed)
    day = DAY0 + rng.integers(0, 4, n)
    bucket = rng.choice(["control", "treatment", "b2"], n)
    online = np.round(rng.random(n), 1)  # coarse: many ties
    click = (rng.random(n) < 0.15 + 0.5 * online * (bucket == "treatment")).astype(np.int8)
    offline = np.round(online * 0.5 + rng.random(n) * 0.5, 2)
    offline[rng.random(n) < nan_share] = np.nan
    return pd.DataFrame({
        "day": day.astype(np.int32), "bucket": pd.array(bucket, dtype="str"), "click": click,
        "rank_score": online.astype(np.float32), "offline_score": offline,
        "user_id": rng.integers(0, 40, n),
    })


def _ref_auc(y, s) -> float:
    y = np.asarray(y)
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_table_matches_sklearn_per_segment_on_same_rows(seed):
    s = _samples(seed)
    table = auc_table(s, "rank_score", "offline_score")
    kept = s.dropna(subset=["offline_score"])
    assert table["n"].iloc[0] == len(kept)  # the "all" row uses the rows both scores have
    keys = {"all": pd.Series("all", index=kept.index), "day": kept["day"].map(format_day),
            "bucket": kept["bucket"].astype(str)}
    expected_rows = 0
    for segment, key in keys.items():
        for value in sorted(key.unique()):
            rows = kept.loc[key == value]
            got = table.loc[(table["segment"] == segment) & (table["value"] == value)]
            assert len(got) == 1, (segment, value)
            got = got.iloc[0]
            assert got["n"] == len(rows) and got["positives"] == int(rows["click"].sum())
            on = _ref_auc(rows["click"], rows["rank_score"])
            off = _ref_auc(rows["click"], rows["offline_score"])
            assert got["online_auc"] == pytest.approx(on, rel=1e-12)
            assert got["offline_auc"] == pytest.approx(off, rel=1e-12)
            assert got["gap"] == pytest.approx(off - on, rel=1e-9, abs=1e-12)
            expected_rows += 1
    assert len(table) == expected_rows
    assert list(table["segment"].unique()) == ["all", "day", "bucket"]


def test_auc_table_online_only_and_missing_columns():
    s = _samples(3, nan_share=0.0).drop(columns=["offline_score"])
    table = auc_table(s, "rank_score", None)
    assert table["offline_auc"].isna().all() and table["gap"].isna().all()
    assert table["online_auc"].iloc[0] == pytest.approx(roc_auc_score(s["click"], s["rank_score"]), rel=1e-12)
    # A named column that is absent is treated as unavailable, not as an error.
    none = auc_table(s.drop(columns=["rank_score"]), "rank_score", None)
    assert none["online_auc"].isna().all()
    assert none["n"].iloc[0] == len(s)


def test_auc_table_single_class_segment_is_nan():
    s = _samples(4, nan_share=0.0)
    s.loc[s["bucket"] == "b2", "click"] = 0
    table = auc_table(s, "rank_score", "offline_score")
    row = table.loc[(table["segment"] == "bucket") & (table["value"] == "b2")].iloc[0]
    assert row["positives"] == 0
    assert np.isnan(row["online_auc"]) and np.isnan(row["offline_auc"]) and np.isnan(row["gap"])


def test_auc_table_hand_case():
    # Online ranks perfectly; offline inverts one pair out of 2x2 -> 0.75.
    s = pd.DataFrame({"day": np.int32(DAY0), "click": [1, 1, 0, 0], "rank_score": [0.9, 0.8, 0.2, 0.1],
                      "offline_score": [0.9, 0.1, 0.2, 0.05]})
    table = auc_table(s, "rank_score", "offline_score")
    assert list(table["segment"]) == ["all", "day"]
    assert table["online_auc"].tolist() == [1.0, 1.0]
    assert table["offline_auc"].tolist() == [0.75, 0.75]
    assert table["gap"].tolist() == [-0.25, -0.25]


def _ref_gauc(y, s, users) -> tuple[float, int, int]:
    num = den = 0.0
    used = skipped = 0
    for u in np.unique(users):
        m = users == u
        if 0 < y[m].sum() < m.sum():
            num += m.sum() * roc_auc_score(y[m], s[m])
            den += m.sum()
            used += 1
        else:
            skipped += 1
    return num / den, used, skipped


@pytest.mark.parametrize("seed", [0, 5])
def test_gauc_summary_matches_bruteforce(seed):
    s = _samples(seed)
    out = gauc_summary(s, {"online": "rank_score", "bundle": "offline_score", "absent": None, "gone": "nope"})
    assert set(out) == {"online", "bundle"}
    for name, col in (("online", "rank_score"), ("bundle", "offline_score")):
        rows = s.dropna(subset=[col])
        value, used, skipped = _ref_gauc(rows["click"].to_numpy(), rows[col].to_numpy(), rows["user_id"].to_numpy())
        assert out[name]["gauc"] == pytest.approx(value, rel=1e-12)
        assert out[name]["users_used"] == used
        assert out[name]["users_skipped_one_class"] == skipped
        assert out[name]["weight"] == "exposures"
