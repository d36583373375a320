"""recall.base helpers against slow pandas references."""
import numpy as np
import pandas as pd
import pytest

from recall.base import CANDIDATE_COLUMNS, finalize_candidates


def reference_finalize(request_ids, item_ids, scores, source, k):
    frame = pd.DataFrame({"request_id": request_ids, "item_id": item_ids, "score": scores.astype(float)})
    frame = frame.sort_values(["request_id", "score", "item_id"], ascending=[True, False, True], kind="stable")
    frame = frame.drop_duplicates(["request_id", "item_id"], keep="first")
    frame["rank"] = frame.groupby("request_id").cumcount() + 1
    if k is not None:
        frame = frame[frame["rank"] <= k]
    frame["source"] = source
    return frame[CANDIDATE_COLUMNS].reset_index(drop=True)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("k", [None, 1, 3])
@pytest.mark.parametrize("string_ids", [False, True])
def test_finalize_matches_reference(seed, k, string_ids):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    req = rng.integers(1, 6, n)
    item = rng.integers(1, 10, n)
    score = rng.integers(0, 4, n) / 4.0  # many ties and duplicate pairs
    if string_ids:
        req, item = req.astype(str).astype(object), np.char.add("i", item.astype(str)).astype(object)
    got = finalize_candidates(req, item, score, "src", k)
    want = reference_finalize(req, item, score, "src", k)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
