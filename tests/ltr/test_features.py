"""FeatureBuilder: leakage property, brute-force references, serving path, state."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from ltr.features import FeatureBuilder, FeatureMatrix
from ltr.logs import join_samples
from ltr.simulate import simulate_world


@pytest.fixture(scope="module")
def world():
    w = simulate_world(users=150, items=200, days=6, seed=3, candidates_per_request=20)
    samples = join_samples(w.logs).samples
    samples["_row"] = np.arange(len(samples))
    return w.logs, samples


@pytest.fixture(scope="module")
def fitted(world):
    logs, samples = world
    train = samples[samples["day"] <= samples["day"].max() - 2]
    builder = FeatureBuilder(min_count=5, history_len=5).fit(train, items=logs.items, users=logs.users)
    return builder


def _bits(features: FeatureMatrix) -> tuple:
    X = features.X
    return (
        X.shape,
        X.indptr.tobytes(),
        X.indices.tobytes(),
        X.data.tobytes(),
        np.ascontiguousarray(features.dense).tobytes(),
    )


def _perturb(rng, samples: pd.DataFrame, cutoff_mask: np.ndarray) -> pd.DataFrame:
    """Delete or change random rows among ``cutoff_mask`` rows; shuffle the row order."""
    frame = samples.copy()
    candidates = np.flatnonzero(cutoff_mask)
    chosen = rng.choice(candidates, size=max(1, candidates.size // 3), replace=False)
    kind = rng.integers(0, 6, chosen.size)
    idx = frame.index[chosen]
    frame.loc[idx[kind == 0], "click"] = 1 - frame.loc[idx[kind == 0], "click"]
    frame.loc[idx[kind == 1], "order"] = 1 - frame.loc[idx[kind == 1], "order"]
    frame.loc[idx[kind == 2], "item_id"] = rng.permutation(frame["item_id"].to_numpy())[: int((kind == 2).sum())]
    frame.loc[idx[kind == 3], "user_id"] = rng.permutation(frame["user_id"].to_numpy())[: int((kind == 3).sum())]
    frame.loc[idx[kind == 4], "position"] = rng.integers(1, 20, int((kind == 4).sum()))
    frame = frame.drop(index=idx[kind == 5])
    # Extra rows on or after the cut-off (new history) must not matter either.
    extra = frame.loc[frame.index.isin(idx[kind != 5])].head(5).copy()
    extra["click"] = 1
    frame = pd.concat([frame, extra])
    return frame.iloc[rng.permutation(len(frame))]


@pytest.mark.parametrize("seed", range(12))
def test_leakage_rows_on_or_after_the_day_never_change_features(world, fitted, seed):
    _, samples = world
    rng = np.random.default_rng(seed)
    days = np.sort(samples["day"].unique())
    d = int(rng.choice(days[1:]))
    query = samples[samples["day"] == d]
    perturbed = _perturb(rng, samples, (samples["day"] >= d).to_numpy())
    a = fitted.transform(query, history=samples)
    b = fitted.transform(query, history=perturbed)
    assert _bits(a) == _bits(b)
    if d < days[-1]:
        # Not vacuous: the same perturbation does move the next day's features.
        nxt = samples[samples["day"] == d + 1]
        assert _bits(fitted.transform(nxt, history=samples)) != _bits(fitted.transform(nxt, history=perturbed))
    # Batch path: the perturbed frame scores itself; its untouched day-d rows agree.
    untouched = perturbed[(perturbed["day"] == d)].drop_duplicates("_row")
    untouched = untouched[untouched["_row"].isin(query["_row"])]
    same = query.set_index("_row").loc[untouched["_row"]]
    same_mask = (same[["item_id", "user_id", "position", "click"]].to_numpy() ==
                 untouched[["item_id", "user_id", "position", "click"]].to_numpy()).all(axis=1)
    rows = untouched[same_mask]
    c = fitted.transform(rows, history=perturbed)
    ref = fitted.transform(samples.set_index("_row", drop=False).loc[rows["_row"]], history=samples)
    assert _bits(c) == _bits(ref)


@pytest.mark.parametrize("seed", range(4))
def test_leakage_with_lag(world, seed):
    logs, samples = world
    lag = 3600
    builder = FeatureBuilder(lag_seconds=lag, windows=(1, 2), min_count=5, history_len=4).fit(
        samples[samples["day"] <= samples["day"].min() + 2], items=logs.items, users=logs.users
    )
    rng = np.random.default_rng(100 + seed)
    t0 = int(rng.choice(samples["ts"].to_numpy()[len(samples) // 3:]))
    # One request time: every row at or after its ts - lag is fair game.
    query = samples[samples["ts"] == t0]
    perturbed = _perturb(rng, samples, (samples["ts"] >= t0 - lag).to_numpy())
    assert _bits(builder.transform(query, history=samples)) == _bits(builder.transform(query, history=perturbed))


def test_counts_and_ctr_match_brute_force(world, fitted):
    _, samples = world
    rng = np.random.default_rng(0)
    rows = samples.iloc[rng.choice(len(samples), 80, replace=False)]
    out = fitted.transform(rows, history=samples)
    dense = pd.DataFrame(out.dense, columns=out.dense_names)
    cat = fitted.items_.take_float("category", fitted.items_.lookup(samples["item_id"]))
    cat_rows = fitted.items_.take_float("category", fitted.items_.lookup(rows["item_id"]))
    for i, (_, row) in enumerate(rows.iterrows()):
        for w in (1, 3, 7):
            keys = {
                "item": samples["item_id"].to_numpy() == row["item_id"],
                "user": samples["user_id"].to_numpy() == row["user_id"],
                "user_category": (samples["user_id"].to_numpy() == row["user_id"]) & (cat == cat_rows[i]),
                "item_position": (samples["item_id"].to_numpy() == row["item_id"])
                & (samples["position"].to_numpy() == row["position"]),
                "category": cat == cat_rows[i],
            }
            for family, match in keys.items():
                # Frozen families (user-side) stop at the end of the training window.
                end = min(row["day"], fitted.freeze_end_) if family in fitted.plan_.frozen else row["day"]
                in_window = ((samples["day"] >= end - w) & (samples["day"] < end)).to_numpy()
                m = match & in_window
                n_exp = m.sum()
                n_clk = samples["click"].to_numpy()[m].sum()
                n_ord = samples["order"].to_numpy()[m].sum()
                assert dense[f"{family}_exp_{w}d"].iloc[i] == n_exp
                assert dense[f"{family}_clk_{w}d"].iloc[i] == n_clk
                assert dense[f"{family}_ord_{w}d"].iloc[i] == n_ord
                prior = fitted.priors_[family]
                expected = (n_clk + prior.alpha) / (n_exp + prior.alpha + prior.beta)
                assert dense[f"{family}_ctr_{w}d"].iloc[i] == pytest.approx(expected, rel=1e-12)


def test_recent_click_cosine_matches_brute_force(world, fitted):
    logs, samples = world
    items = logs.items
    emb = {int(i): np.asarray(e, dtype=np.float64) for i, e in zip(items["item_id"], items["embedding"], strict=True)}
    clicks = samples[samples["click"] == 1].sort_values(["user_id", "ts", "item_id"])
    rng = np.random.default_rng(1)
    rows = samples.iloc[rng.choice(len(samples), 60, replace=False)]
    out = fitted.transform(rows, history=samples)
    got = out.dense[:, out.dense_names.index("cosine_recent_clicks")]
    for i, (_, row) in enumerate(rows.iterrows()):
        past = clicks[(clicks["user_id"] == row["user_id"]) & (clicks["day"] < row["day"])].tail(5)
        if past.empty:
            assert np.isnan(got[i])
            continue
        vecs = [emb[int(item)] / np.linalg.norm(emb[int(item)]) for item in past["item_id"]]
        profile = np.mean(vecs, axis=0)
        profile /= np.linalg.norm(profile)
        target = emb[int(row["item_id"])] / np.linalg.norm(emb[int(row["item_id"])])
        assert got[i] == pytest.approx(float(profile @ target), abs=1e-9)
    # The CSR value column holds the same number, 0 where undefined.
    col = out.feature_names.index("cosine_recent_clicks")
    np.testing.assert_allclose(out.X[:, col].toarray().ravel(), np.nan_to_num(got, nan=0.0))


def test_smoothed_ctr_of_one_click_in_one_exposure_is_not_one(world):
    _, samples = world
    train = samples[samples["day"] <= samples["day"].min() + 2]
    builder = FeatureBuilder(key_families=("item",), windows=(1,), min_count=5).fit(train)
    day = int(train["day"].max()) + 1
    new_item = int(samples["item_id"].max()) + 1
    history = pd.concat([train, pd.DataFrame({
        "user_id": [1], "item_id": [new_item], "ts": [(day - 1) * 86400 + 5], "day": [day - 1],
        "position": [1], "click": [1], "order": [0],
    })])
    query = pd.DataFrame({"user_id": [1, 1], "item_id": [new_item, new_item + 1], "ts": [day * 86400 + 9] * 2})
    out = builder.transform(query, history=history)
    dense = dict(zip(out.dense_names, out.dense.T, strict=True))
    prior = builder.priors_["item"]
    assert dense["item_exp_1d"].tolist() == [1.0, 0.0]
    assert dense["item_ctr_1d"][0] == pytest.approx((1 + prior.alpha) / (1 + prior.alpha + prior.beta))
    assert dense["item_ctr_1d"][0] < 0.5
    # An unseen item gets the prior mean.
    assert dense["item_ctr_1d"][1] == pytest.approx(prior.mean)


def test_serving_frame_equals_batch_rows(world, fitted):
    _, samples = world
    day = int(samples["day"].max())
    batch_rows = samples[(samples["day"] == day) & (samples["position"] == 1)].head(40)
    serving = batch_rows[["request_id", "user_id", "item_id", "ts", "device", "recall_source"]].reset_index(drop=True)
    a = fitted.transform(batch_rows, history=samples)
    b = fitted.transform(serving, history=samples)  # no position, day or labels
    assert _bits(a) == _bits(b)
    # Without a context column the row goes to that column's missing level.
    c = fitted.transform(serving.drop(columns=["device"]), history=samples)
    col = c.feature_names.index("device=<nan>")
    assert (c.X[:, col].toarray() == 1).all()


def test_bucket_is_never_a_feature(world, fitted):
    _, samples = world
    assert not any("bucket" in name for name in fitted.feature_names_ + fitted.dense_names_)
    rows = samples.tail(50)
    flipped = rows.assign(bucket="other")
    assert _bits(fitted.transform(rows)) == _bits(fitted.transform(flipped))
    with pytest.raises(ValueError, match="categorical must not include 'bucket'"):
        FeatureBuilder(categorical=("device", "bucket")).fit(samples)
    with pytest.raises(ValueError, match="extra_keys must not use 'bucket'"):
        FeatureBuilder(extra_keys=(("user_id", "bucket"),)).fit(samples)


def test_matrix_layout_and_binning(world, fitted):
    _, samples = world
    out = fitted.transform(samples)
    assert out.X.shape == (len(samples), len(out.feature_names))
    assert out.X.dtype == np.float64
    n_onehot = len(fitted.binned_names_) + len(fitted.categorical_)
    # One active level per one-hot block plus the cosine value column on every row.
    assert (np.diff(out.X.indptr) == n_onehot + 1).all()
    cont = pd.DataFrame(out.dense[:, : len(fitted.continuous_names_)], columns=fitted.continuous_names_)
    codes = fitted.binner_.transform(cont[fitted.binned_names_])
    for j, name in enumerate(fitted.binned_names_[:10]):
        cols = out.X[:, fitted.space_.block(name)].toarray()
        np.testing.assert_array_equal(cols.argmax(axis=1), codes[:, j])
    # Training rows fill the bins of a feature with many distinct values roughly equally.
    train = samples[samples["day"] <= samples["day"].max() - 2]
    tr = fitted.transform(train)
    name = "item_age_days"
    block = tr.X[:, fitted.space_.block(name)].toarray().sum(axis=0)[:-1]
    assert block.min() > 0.5 * len(train) / block.size


def test_extra_keys_and_explicit_categorical(world):
    logs, samples = world
    builder = FeatureBuilder(
        key_families=("item",), extra_keys=(("device",), ("user_id", "recall_source")),
        categorical=("device", "hour", "item_city"), windows=(2,), min_count=1,
    ).fit(samples, items=logs.items, users=logs.users)
    assert list(builder.families_) == ["item", "device", "user_id__recall_source"]
    out = builder.transform(samples.head(100))
    assert "device_exp_2d" in out.dense_names
    assert "user_id__recall_source_ctr_2d" in out.dense_names
    # Id-level categoricals (on by default) follow the explicit ones.
    assert [n for n in out.dense_names if n.endswith(":code")] == ["device:code", "hour:code", "item_city:code",
                                                                   "user_id:code", "item_id:code"]
    with pytest.raises(ValueError, match="extra_keys columns must exist"):
        FeatureBuilder(extra_keys=(("nope",),)).fit(samples)
    with pytest.raises(ValueError, match="categorical columns must be context columns"):
        FeatureBuilder(categorical=("nope",)).fit(samples)


def test_families_needing_items_turn_off_without_them(world):
    _, samples = world
    builder = FeatureBuilder(min_count=5).fit(samples)
    assert list(builder.families_) == ["item", "user", "item_position"]
    assert "cosine_recent_clicks" not in builder.feature_names_


def test_transform_does_not_change_self(world, fitted):
    _, samples = world
    before = fitted.to_state()
    keys = set(vars(fitted))
    fitted.transform(samples.head(300), history=samples)
    after = fitted.to_state()
    assert set(vars(fitted)) == keys
    assert json.dumps(before[0], sort_keys=True) == json.dumps(after[0], sort_keys=True)
    assert before[1].keys() == after[1].keys()
    for k in before[1]:
        np.testing.assert_array_equal(before[1][k], after[1][k])


def test_state_round_trip_is_bit_identical(world, fitted):
    _, samples = world
    meta, arrays = fitted.to_state()
    meta = json.loads(json.dumps(meta))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    loaded = dict(np.load(buf, allow_pickle=False))
    back = FeatureBuilder.from_state(meta, loaded)
    assert back.get_params() == fitted.get_params()
    assert _bits(back.transform(samples)) == _bits(fitted.transform(samples))
    with pytest.raises(ValueError, match="meta must have format"):
        FeatureBuilder.from_state({"format": "x"}, loaded)


def test_unfitted_and_bad_input(world):
    _, samples = world
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FeatureBuilder().transform(samples)
    with pytest.raises(TypeError, match="samples must be a pandas DataFrame"):
        FeatureBuilder().fit(samples.to_numpy())
    with pytest.raises(ValueError, match="samples must have columns"):
        FeatureBuilder().fit(samples.drop(columns=["click"]))
    with pytest.raises(ValueError, match="samples must have at least 1 row"):
        FeatureBuilder().fit(samples.head(0))


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"windows": ()}, ValueError, "windows must be a non-empty tuple"),
        ({"windows": (0, 3)}, ValueError, "windows must be a non-empty tuple"),
        ({"windows": (3, 3)}, ValueError, "windows must not repeat"),
        ({"key_families": ("items",)}, ValueError, "key_families must be one of \\['category', 'item', "),
        ({"key_families": "item"}, TypeError, "key_families must be a tuple of str"),
        ({"n_bins": 1}, ValueError, "n_bins must be an int in \\[2, inf\\). Got 1 instead."),
        ({"min_count": 0}, ValueError, "min_count must be an int in \\[1, inf\\). Got 0 instead."),
        ({"history_len": 0}, ValueError, "history_len must be an int in \\[1, inf\\)"),
        ({"history_len": 2.0}, TypeError, "history_len must be an int. Got 2.0 instead."),
        ({"lag_seconds": -1}, ValueError, "lag_seconds must be an int in \\[0, inf\\). Got -1 instead."),
        ({"prior_method": "bayes"}, ValueError, "prior_method must be one of \\['mle', 'moments'\\]"),
        ({"default_position": 1.5}, TypeError, "default_position must be an int. Got 1.5 instead."),
        ({"extra_keys": (("user_id", 3),)}, TypeError, "extra_keys must be a tuple of tuples of str"),
        ({"categorical": "device"}, TypeError, "categorical must be a tuple of str or None"),
    ],
)
def test_parameter_validation(world, params, error, match):
    _, samples = world
    with pytest.raises(error, match=match):
        FeatureBuilder(**params).fit(samples)


def test_chunking_and_dense_flag_change_no_value(world, fitted):
    _, samples = world
    rows = samples.head(500)
    a = fitted.transform(rows, history=samples)
    b = fitted.transform(rows, history=samples, chunk_size=37)
    assert _bits(a) == _bits(b)
    c = fitted.transform(rows, history=samples, dense=False)
    assert c.dense.shape == (500, 0) and c.dense_names == []
    assert (a.X != c.X).nnz == 0
    with pytest.raises(ValueError, match="chunk_size must be an int"):
        fitted.transform(rows, chunk_size=0)


def test_time_zone_moves_hour_and_day(world):
    _, samples = world
    rows = samples.drop(columns=["day"]).head(200)
    utc = FeatureBuilder(key_families=("item",), categorical=("hour",), min_count=1).fit(rows)
    tokyo = FeatureBuilder(key_families=("item",), categorical=("hour",), min_count=1, tz="Asia/Tokyo").fit(rows)
    h_utc = utc.transform(rows).dense[:, -1]
    h_tokyo = tokyo.transform(rows).dense[:, -1]
    # Codes index sorted hours; map back to hours and compare the 9 h shift.
    hours_utc = np.asarray(utc.encoders_["context"].categories_[0])[h_utc.astype(int)]
    hours_tokyo = np.asarray(tokyo.encoders_["context"].categories_[0])[h_tokyo.astype(int)]
    np.testing.assert_array_equal((hours_utc + 9) % 24, hours_tokyo)
