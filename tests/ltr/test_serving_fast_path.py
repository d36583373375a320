"""The serving path of the features (one request from a per-day item table) and compiled trees.

``FeatureBuilder.transform(frame, cache=...)`` on one request (one user, one day) splits the
columns by scope (``ltr/features/_request.py``): item columns gathered from a per-day table of
every item, request columns computed once, row columns per row. The reference is the general
path (``cache=None``: every column per row); the two must agree bit for bit on every feature
configuration, with unknown items and users, string ids and non-UTC days. Compiled trees
(lleaves) must predict what LightGBM predicts.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ltr import Ranker
from ltr.features import DayTableCache, FeatureBuilder
from ltr.logs import join_samples, read_logs
from ltr.models import CompiledTrees, LightGBMRanker, LogisticRegressionRanker, compile_trees
from ltr.simulate import simulate_world
from ltr.train import default_feature_params, prepare_training, train_ranker
from tests.real_chain import REAL

REAL_TZ = "Asia/Shanghai"
EVERYTHING = {"windows": (1, 3, 7), "ids": True, "id_min_count": 2, "cross_keys": True, "recency": True,
              "min_count": 3}


@pytest.fixture(scope="module")
def simulated():
    logs = simulate_world(users=150, items=200, days=6, seed=11, candidates_per_request=12).logs
    return logs, join_samples(logs).samples


@pytest.fixture(scope="module")
def real():
    logs = read_logs(REAL, tz=REAL_TZ)
    return logs, join_samples(logs).samples


def _builder(world, params: dict, tz: str = "UTC") -> tuple[FeatureBuilder, pd.DataFrame, int]:
    logs, samples = world
    last = int(samples["day"].max())
    data = prepare_training(logs, last - 2, feature_params=params, tz=tz)
    return data.builder, samples, last - 1


def _requests(samples: pd.DataFrame, day: int, n: int, seed: int, columns: list[str],
              drop_some: bool = True) -> list[pd.DataFrame]:
    """Requests of ``day``'s users over random candidates: known items, items of no table, some positions."""
    rng = np.random.default_rng(seed)
    rows = samples.loc[samples["day"] == day].drop_duplicates("request_id").head(n)
    items = samples["item_id"].unique()
    frames = []
    for k, (_, row) in enumerate(rows.iterrows()):
        size = int(rng.integers(1, 40))
        candidates = rng.choice(items, size=size, replace=size > items.size)
        if items.dtype.kind in "iu" and k % 3 == 0:
            candidates[0] = int(items.max()) + 1 + k  # an item no table has seen
        frame = pd.DataFrame({"request_id": row["request_id"], "user_id": row["user_id"],
                              "item_id": candidates, "ts": np.int64(row["ts"])}, index=range(size))
        for col in columns:
            if col in ("request_id", "user_id", "item_id", "ts"):
                continue
            if col == "position" and k % 2:
                frame[col] = rng.integers(1, 10, size)
            elif col != "position" and not (drop_some and k % 4 == 1):  # lacking a context column: missing level
                frame[col] = rng.choice(samples[col].to_numpy(), size)
        frames.append(frame)
    return frames


def _bits(matrix) -> tuple:
    X = matrix.X.tocsr()
    return (X.shape, X.indptr.tobytes(), X.indices.tobytes(), X.data.tobytes(),
            np.ascontiguousarray(matrix.dense).tobytes(), tuple(matrix.feature_names), tuple(matrix.dense_names))


def _assert_fast_path_equals_general(builder: FeatureBuilder, frames: list[pd.DataFrame]) -> None:
    cache = DayTableCache()
    for frame in frames:
        prepared_days = builder.transform(frame, cache=cache)
        general = builder.transform(frame)
        assert _bits(prepared_days) == _bits(general)
        # The request path ran: the day's item table is in the cache.
        assert any(key[0] == "request-items" for key in cache._memo)


@pytest.mark.parametrize("params", ["lr", "lgbm", "everything"])
def test_simulated_requests_equal_the_general_path(simulated, params):
    features = EVERYTHING if params == "everything" else default_feature_params(params)
    builder, samples, day = _builder(simulated, features)
    columns = ["request_id", "user_id", "item_id", "ts", "position", "device", "recall_source"]
    _assert_fast_path_equals_general(builder, _requests(samples, day, 25, seed=1, columns=columns))


@pytest.mark.parametrize("params", ["lr", "lgbm", "everything"])
def test_real_requests_equal_the_general_path(real, params):
    """KuaiRand sample: author/music keys and their user crosses, outcomes, Shanghai days, tab context."""
    features = EVERYTHING if params == "everything" else default_feature_params(params)
    builder, samples, day = _builder(real, features, tz=REAL_TZ)
    assert builder.outcomes  # the real logs' outcome columns are in use
    if params != "lr":  # LR's defaults leave the crosses out
        assert any(f.startswith("user_item_") for f in builder.families_)
    columns = ["request_id", "user_id", "item_id", "ts", "position", "tab"]
    _assert_fast_path_equals_general(builder, _requests(samples, day, 25, seed=2, columns=columns))


def test_string_ids_equal_the_general_path(simulated):
    logs, _ = simulated
    as_text = {name: table.copy() for name, table in vars(logs).items() if isinstance(table, pd.DataFrame)}
    for table in as_text.values():
        for col in ("user_id", "item_id"):
            if col in table.columns:
                table[col] = "id-" + table[col].astype(str)
    text_logs = type(logs)(**as_text)
    text_samples = join_samples(text_logs).samples
    builder, _, day = _builder((text_logs, text_samples), default_feature_params("lgbm"))
    frames = _requests(text_samples, day, 10, seed=3, columns=["device", "recall_source"])
    frames[0].loc[0, "item_id"] = "id-never-seen"
    _assert_fast_path_equals_general(builder, frames)


def test_days_back_and_forth_and_repeated_items(simulated):
    """Item tables of several days in one cache (evicted and rebuilt), items repeated in a request."""
    builder, samples, day = _builder(simulated, EVERYTHING)
    cache = DayTableCache()
    columns = ["device", "recall_source", "position"]
    for k, d in enumerate([day, day - 1, day, day - 2, day - 1, day, day]):
        frame = _requests(samples, d, 3, seed=10 + k, columns=columns)[k % 3]
        frame = pd.concat([frame, frame.head(3)], ignore_index=True)  # the same items twice
        assert _bits(builder.transform(frame, cache=cache)) == _bits(builder.transform(frame))
    assert len(cache._memo) <= 2


@pytest.mark.parametrize("change", ["two users", "two days"])
def test_frames_that_are_not_one_request_take_the_general_path(simulated, change):
    builder, samples, day = _builder(simulated, default_feature_params("lgbm"))
    frame = _requests(samples, day, 1, seed=4, columns=["device", "recall_source"])[0]
    other = samples.loc[samples["day"] == (day if change == "two users" else day - 1)]
    other = other.loc[other["user_id"] != frame["user_id"].iloc[0]].head(5)
    mixed = pd.concat([frame, other[frame.columns]], ignore_index=True)
    prepared = builder.transform(mixed, cache=DayTableCache())
    assert _bits(prepared) == _bits(builder.transform(mixed))


def test_one_cache_serves_a_refreshed_builder(simulated):
    """The per-day item table belongs to the tables it came from: a refreshed builder gets its own."""
    builder, samples, day = _builder(simulated, default_feature_params("lgbm"))
    refreshed = builder.refreshed(samples, day)
    cache = DayTableCache()
    for frame in _requests(samples, day + 1, 6, seed=5, columns=["device", "recall_source"]):
        before = builder.transform(frame, cache=cache)
        after = refreshed.transform(frame, cache=cache)
        assert _bits(before) == _bits(builder.transform(frame))
        assert _bits(after) == _bits(refreshed.transform(frame))


def test_columns_go_to_the_scope_their_inputs_have(real):
    builder, _, _ = _builder(real, EVERYTHING, tz=REAL_TZ)
    layout = builder._request_
    names = list(builder._layout_.dense_names)
    scope_of = {}
    for scope in ("item", "request", "row"):
        for part in layout.continuous[scope]:
            scope_of.update({names[j]: scope for j in part.put})
        for part in layout.categorical[scope]:
            scope_of.update({names[builder._layout_.n_continuous + j]: scope for j in part.put})
    assert len(scope_of) == len(names)  # every column has exactly one scope
    expected = {
        "item_ctr_7d": "item", "item_item_author_id_ctr_all": "item", "category_exp_1d": "item",
        "item_video_duration": "item", "item_category:code": "item", "item_id:code": "item",
        "user_ctr_all": "request", "user_id:code": "request", "user_user_active_degree:code": "request",
        "user_category_ctr_7d": "row", "user_item_author_id_clk_3d": "row", "item_position_ctr_1d": "row",
        "user_item_author_id_days_since_click": "row", "item_age_days": "row", "tab:code": "row",
        "hour:code": "row", "position:code": "row",
    }
    present = {name: scope for name, scope in expected.items() if name in scope_of}
    assert len(present) >= 12, sorted(scope_of)
    assert {name: scope_of[name] for name in present} == present


def test_onehot_false_leaves_x_empty(simulated):
    builder, samples, day = _builder(simulated, default_feature_params("lgbm"))
    frame = _requests(samples, day, 1, seed=6, columns=["device", "recall_source"])[0]
    for cache in (None, DayTableCache()):
        both = builder.transform(frame, cache=cache)
        dense_only = builder.transform(frame, cache=cache, onehot=False)
        assert dense_only.X.shape == (len(frame), 0) and dense_only.feature_names == []
        np.testing.assert_array_equal(dense_only.dense, both.dense)
    with pytest.raises(ValueError, match="dense or onehot must be True"):
        builder.transform(frame, dense=False, onehot=False)


# -- compiled trees ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(simulated):
    logs, samples = simulated
    last = int(samples["day"].max())
    params = {"num_boost_round": 60, "num_leaves": 15, "min_data_in_leaf": 5, "num_threads": 1}
    rankers = {}
    for name, inputs in (("lgbm", "dense"), ("lgbm", "both"), ("lr", "onehot")):
        data = prepare_training(logs, last - 1, feature_params=default_feature_params(name))
        rankers[(name, inputs)] = train_ranker(logs, name, inputs=inputs, data=data,
                                               model_params=params if name == "lgbm" else {})
    return rankers, samples, last


@pytest.mark.parametrize("inputs", ["dense", "both"])
def test_compiled_trees_predict_what_lightgbm_predicts(trained, inputs):
    rankers, samples, last = trained
    ranker = rankers[("lgbm", inputs)]
    model = ranker.model.booster_.model_to_string()
    decisions = {int(d) for line in re.findall(r"decision_type=([0-9 ]+)", model) for d in line.split()}
    if inputs == "dense":
        # Not a trivial model: categorical splits (bit 0 of decision_type) and splits that send
        # NaN one way (missing type 2 in bits 2-3) both occur.
        assert any(d & 1 for d in decisions) and any((d >> 2) & 3 == 2 for d in decisions)
    else:
        assert len(decisions) > 1
    held = samples.loc[samples["day"] == last]
    X, _ = ranker.transform(held)
    trees = compile_trees(ranker.model)
    assert isinstance(trees, CompiledTrees)
    np.testing.assert_allclose(trees.predict(X), ranker.model.predict(X), rtol=0, atol=1e-9)
    assert trees.predict(X[:0]).shape == (0,)
    with pytest.raises(ValueError, match="X must have shape"):
        trees.predict(np.zeros((2, 3)))


def test_compiled_ranker_scores_as_the_plain_one(trained, tmp_path):
    rankers, samples, last = trained
    ranker = rankers[("lgbm", "dense")]
    ranker.save(tmp_path / "bundle")
    plain, compiled = Ranker.load(tmp_path / "bundle"), Ranker.load(tmp_path / "bundle", compiled=True)
    assert compiled.compiled and not plain.compiled
    columns = ["request_id", "user_id", "item_id", "ts", "device", "recall_source"]
    for frame in _requests(samples, last, 8, seed=7, columns=columns, drop_some=False):
        np.testing.assert_allclose(compiled.score(frame), plain.score(frame), rtol=0, atol=1e-9)


def test_compiled_is_for_tree_models_only(trained):
    rankers, samples, last = trained
    lr = rankers[("lr", "onehot")]
    assert isinstance(lr.model, LogisticRegressionRanker)
    # An LR bundle loaded with compiled=True scores as before (it has no trees).
    same = Ranker(lr.features, lr.model, lr.inputs, lr.metadata, compiled=True)
    frame = _requests(samples, last, 1, seed=8, columns=["device", "recall_source"], drop_some=False)[0]
    np.testing.assert_array_equal(same.score(frame), lr.score(frame))
    with pytest.raises(TypeError, match="model must be a fitted LightGBMRanker"):
        compile_trees(lr.model)
    with pytest.raises(TypeError, match="model must be a fitted LightGBMRanker"):
        compile_trees(LightGBMRanker())
