"""One contract for every recall source (recall.base.SOURCES) and for the merger.

Each source, fitted with small fast parameters on one tiny simulated world (``conftest.py``),
must: give the same lists in a batch as one request at a time, keep scores non-increasing
down each list, never repeat an item in a list, retrieve identically after a save/load round
trip (through ``recall.load``), refuse a tampered directory, serve users with no history
alike, cope with K larger than the catalogue, and return catalogue items only. A registered
source that cannot be imported fails these tests; it is never skipped.
"""
from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr.artifacts import ArtifactError
from ltr.logs import day_index, events_with_users
from recall import base
from recall.base import CANDIDATE_COLUMNS, SOURCES, validate_candidates
from tests.recall.conftest import NAMES, make_source

K = 25
#: Sources that keep their training days' clicks (they retrieve without the training logs).
STORED_HISTORY = ["nip", "two_tower", "itemcf", "hot", "merged"]


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_single_requests(name, contract_world, fitted):
    logs, _, requests = contract_world
    source = fitted(name)
    batch = source.retrieve(requests, logs, K)
    assert list(batch.columns) == CANDIDATE_COLUMNS
    singles = pd.concat([source.retrieve(requests.iloc[[i]], logs, K) for i in (0, 5, 17, len(requests) - 1)],
                        ignore_index=True)
    expected = batch.loc[batch["request_id"].isin(singles["request_id"])].reset_index(drop=True)
    # Identical lists; torch may round a user vector differently in another batch size.
    pd.testing.assert_frame_equal(singles, expected, check_exact=False, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_retrieval(name, contract_world, fitted):
    """Refitting with the same parameters and data reproduces the lists exactly."""
    logs, train_end, requests = contract_world
    again = make_source(name).fit(logs, train_end)
    pd.testing.assert_frame_equal(again.retrieve(requests, logs, K), fitted(name).retrieve(requests, logs, K))


@pytest.mark.parametrize("name", NAMES)
def test_lists_are_well_formed(name, contract_world, fitted):
    logs, _, requests = contract_world
    out = fitted(name).retrieve(requests, logs, K)
    validate_candidates(out)
    assert set(out["request_id"]) == set(requests["request_id"])
    assert (out.groupby("request_id").size() <= K).all()
    assert (out.groupby("request_id")["score"].diff().dropna() <= 0).all(), "scores increase down a list"
    ranks = out.groupby("request_id")["rank"]
    assert (ranks.diff().dropna() == 1).all() and (ranks.min() == 1).all()
    assert np.isfinite(out["score"].to_numpy()).all()
    assert out["item_id"].isin(logs.items["item_id"]).all()
    expected_source = "itemcf|hot|itemcf\\+hot" if name == "merged" else name
    assert out["source"].str.fullmatch(expected_source).all()


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, contract_world, fitted, tmp_path):
    logs, _, requests = contract_world
    source = fitted(name)
    assert source.save(tmp_path / name) is None
    again = base.load(tmp_path / name)
    assert type(again) is type(source)
    pd.testing.assert_frame_equal(again.retrieve(requests, logs, K), source.retrieve(requests, logs, K))


@pytest.mark.parametrize("name", STORED_HISTORY)
def test_loaded_source_needs_no_training_logs(name, contract_world, fitted, tmp_path):
    """The training days' clicks travel with the source: logs of the retrieval day alone give
    the same lists as the full logs."""
    logs, train_end, requests = contract_world
    fitted(name).save(tmp_path / name)
    loaded = base.load(tmp_path / name)
    late = day_index(logs.requests["ts"].to_numpy(), logs.tz) > train_end
    kept = logs.requests.loc[late, "request_id"]
    recent = logs.replace(**{table: getattr(logs, table).loc[getattr(logs, table)["request_id"].isin(kept)]
                             for table in ("requests", "exposures", "clicks", "candidates")},
                          # orders without a request are kept by their day
                          orders=logs.orders.loc[day_index(logs.orders["ts"].to_numpy(), logs.tz) > train_end])
    assert len(recent.clicks) < len(logs.clicks)
    pd.testing.assert_frame_equal(loaded.retrieve(requests, recent, K), fitted(name).retrieve(requests, logs, K))


@pytest.mark.parametrize("name", NAMES)
def test_every_tampered_file_is_refused(name, fitted, tmp_path):
    """One flipped byte in any file of the directory (a sub-source's manifest included) is refused."""
    fitted(name).save(tmp_path / "source")
    files = sorted(str(p.relative_to(tmp_path / "source")) for p in (tmp_path / "source").rglob("*")
                   if p.is_file() and p.relative_to(tmp_path / "source") != Path("manifest.json"))
    assert files
    for number, relative in enumerate(files):
        target = tmp_path / f"tampered{number}"
        shutil.copytree(tmp_path / "source", target)
        data = bytearray((target / relative).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (target / relative).write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match=r"checksum mismatch|modified"):
            base.load(target)


@pytest.mark.parametrize("name", NAMES)
def test_users_without_history_get_the_same_full_list(name, contract_world, fitted):
    """Two users in no table and with no clicks: nothing tells them apart, so they get the same
    K catalogue items."""
    logs, _, requests = contract_world
    cold = requests.iloc[:2].copy()
    cold["request_id"] = [10**9, 10**9 + 1]
    cold["user_id"] = [10**8, 10**8 + 1]
    cold["ts"] = cold["ts"].iloc[0]
    out = fitted(name).retrieve(cold, logs, K)
    lists = [group["item_id"].tolist() for _, group in out.groupby("request_id")]
    assert len(lists) == 2 and len(lists[0]) == K and lists[0] == lists[1]
    assert out["item_id"].isin(logs.items["item_id"]).all()


@pytest.mark.parametrize("name", NAMES)
def test_k_larger_than_catalogue(name, contract_world, fitted):
    logs, _, requests = contract_world
    n_items = len(logs.items)
    out = fitted(name).retrieve(requests.iloc[:3], logs, n_items + 50)
    validate_candidates(out)
    assert (out.groupby("request_id").size() <= n_items).all()
    assert out["item_id"].isin(logs.items["item_id"]).all()


@pytest.mark.parametrize("name", NAMES)
def test_no_requests_give_an_empty_frame(name, contract_world, fitted):
    logs, _, requests = contract_world
    out = fitted(name).retrieve(requests.iloc[:0], logs, K)
    assert len(out) == 0 and list(out.columns) == CANDIDATE_COLUMNS


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("k", "error", "match"), [
    (0, ValueError, r"k must be an int in \[1, inf\)\. Got 0 instead\."),
    (2.5, TypeError, r"k must be an int\. Got 2\.5 instead\."),
])
def test_rejects_bad_k(name, contract_world, fitted, k, error, match):
    logs, _, requests = contract_world
    with pytest.raises(error, match=match):
        fitted(name).retrieve(requests, logs, k)


@pytest.mark.parametrize("name", NAMES)
def test_rejects_bad_requests(name, contract_world, fitted):
    logs, _, requests = contract_world
    with pytest.raises(ValueError, match=r"requests must have columns .* \(missing \['ts'\]\)"):
        fitted(name).retrieve(requests.drop(columns="ts"), logs, K)
    with pytest.raises(ValueError, match="requests must have unique request_id"):
        fitted(name).retrieve(pd.concat([requests.iloc[:2], requests.iloc[:1]]), logs, K)


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_source_refuses_to_retrieve(name, contract_world):
    logs, _, requests = contract_world
    with pytest.raises(ValueError, match="fitted"):
        make_source(name).retrieve(requests, logs, K)


def _seen_items(logs, table, requests):
    """(request_id, item_id) of every item each request's user had in ``table`` before the request."""
    events = events_with_users(logs, table)[["user_id", "item_id", "ts"]]
    pairs = requests[["request_id", "user_id", "ts"]].merge(events.rename(columns={"ts": "event_ts"}), on="user_id")
    return set(map(tuple, pairs.loc[pairs["event_ts"] < pairs["ts"], ["request_id", "item_id"]].to_numpy()))


@pytest.mark.parametrize("name", NAMES)
def test_clicked_items_never_come_back_by_default(name, contract_world, fitted):
    logs, _, requests = contract_world
    out = fitted(name).retrieve(requests, logs, K)
    clicked = _seen_items(logs, "clicks", requests)
    assert clicked, "the world must have users who clicked before their request"
    assert not clicked & set(map(tuple, out[["request_id", "item_id"]].to_numpy()))


@pytest.mark.parametrize("name", NAMES)
def test_exclude_seen_exposures_and_none(name, contract_world):
    """``exposures`` also drops every item the user was shown; ``none`` returns clicked items
    again (this world's users re-click: the option changes the lists)."""
    logs, train_end, requests = contract_world
    out = make_source(name, exclude_seen="exposures").fit(logs, train_end).retrieve(requests, logs, K)
    got = set(map(tuple, out[["request_id", "item_id"]].to_numpy()))
    assert not (_seen_items(logs, "exposures", requests) | _seen_items(logs, "clicks", requests)) & got
    assert (out.groupby("request_id").size() == K).all()
    kept = make_source(name, exclude_seen="none").fit(logs, train_end).retrieve(requests, logs, K)
    assert _seen_items(logs, "clicks", requests) & set(map(tuple, kept[["request_id", "item_id"]].to_numpy()))


@pytest.mark.parametrize("name", NAMES)
def test_rejects_bad_exclude_seen(name, contract_world):
    logs, train_end, _ = contract_world
    with pytest.raises(ValueError, match=r"exclude_seen must be one of \['clicks', 'exposures', 'none'\]\. "
                                         r"Got 'yes' instead\."):
        make_source(name, exclude_seen="yes").fit(logs, train_end)


@pytest.mark.parametrize("name", STORED_HISTORY)
def test_single_request_without_logs(name, contract_world, fitted):
    """``logs=None``: a request is answered from what the source keeps (no log scan); for a
    request of the first day after training, that is everything the logs would add."""
    logs, _, requests = contract_world
    source = fitted(name)
    first = requests.loc[requests["ts"] == requests["ts"].min()].head(1)
    pd.testing.assert_frame_equal(source.retrieve(first, None, K), source.retrieve(first, logs, K))


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_registry_names_resolve(name):
    """Every registered source imports and names itself as registered (no import is skipped)."""
    module_name, cls_name = SOURCES[name].split(":")
    assert getattr(importlib.import_module(module_name), cls_name).kind == name
