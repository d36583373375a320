"""Ids may be strings in every table (DESIGN, log contract): each source trained on a world whose
request, user and item ids are strings gives the lists it gives on the integer world.

``relabel`` spells the ids zero-padded, so they sort like the integers they replace: a source
orders its catalogue and breaks ties by id, and with the same order it must reproduce the
integer world exactly (scores included), which is what these tests check.
"""
from __future__ import annotations

import pandas as pd
import pytest

from recall import base
from tests.recall.conftest import NAMES, World, fitted_on
from tests.recall.worlds import integer_ids, relabel, string_ids

K = 25


@pytest.fixture(scope="module")
def string_world(contract_world):
    logs, train_end, requests = contract_world
    return World(relabel(logs), train_end, string_ids(requests))


@pytest.fixture(scope="module")
def string_fitted(string_world):
    return fitted_on(string_world)


def test_relabelled_world_has_string_ids(string_world):
    logs = string_world.logs
    for table, column in (("requests", "user_id"), ("clicks", "request_id"), ("items", "item_id")):
        assert getattr(logs, table)[column].map(type).eq(str).all(), f"{table}.{column}"


@pytest.mark.parametrize("name", NAMES)
def test_string_ids_give_the_integer_lists(name, contract_world, string_world, fitted, string_fitted):
    got = string_fitted(name).retrieve(string_world.requests, string_world.logs, K)
    assert got["item_id"].str.fullmatch(r"i\d{6}").all() and got["request_id"].str.fullmatch(r"r\d{7}").all()
    want = fitted(name).retrieve(contract_world.requests, contract_world.logs, K)
    pd.testing.assert_frame_equal(integer_ids(got), want)


@pytest.mark.parametrize("name", ["nip", "two_tower"])
def test_string_ids_exact_search(name, contract_world, string_world, fitted, string_fitted):
    got = string_fitted(name).retrieve(string_world.requests, string_world.logs, K, exact=True)
    want = fitted(name).retrieve(contract_world.requests, contract_world.logs, K, exact=True)
    pd.testing.assert_frame_equal(integer_ids(got), want)


@pytest.mark.parametrize("name", NAMES)
def test_string_ids_survive_save_and_load(name, string_world, string_fitted, tmp_path):
    source = string_fitted(name)
    source.save(tmp_path / name)
    again = base.load(tmp_path / name)
    pd.testing.assert_frame_equal(again.retrieve(string_world.requests, string_world.logs, K),
                                  source.retrieve(string_world.requests, string_world.logs, K))
