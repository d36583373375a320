"""The public surface of each package: every exported name resolves to the object its home
module defines, and the names DESIGN.md promises (Interfaces) are there and behave."""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Names downstream code relies on (DESIGN.md, Interfaces); removing one is a breaking change.
PROMISED = {
    "ltr": ["read_logs", "join_samples", "Ranker"],
    "eval.metrics": ["auc", "gauc", "logloss", "normalized_entropy", "calibration_table",
                     "expected_calibration_error", "hitrate_at_k"],
    "recall": ["load"],
}


@pytest.mark.parametrize("package", ["ltr", "ltr.logs", "ltr.features", "ltr.metrics", "ltr.models", "ltr.simulate",
                                     "recall", "recall.neural", "recall.hnsw", "eval", "eval.metrics", "eval.ab",
                                     "eval.report"])
def test_every_export_is_defined_where_it_lives(package):
    module = importlib.import_module(package)
    assert module.__all__ == sorted(set(module.__all__), key=module.__all__.index), "duplicate names in __all__"
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            home = value.__module__
            # Re-exports point at the defining module, which belongs to the project.
            assert home.split(".")[0] in ("ltr", "recall", "eval"), f"{package}.{name} comes from {home}"
            assert getattr(importlib.import_module(home), value.__name__) is value


@pytest.mark.parametrize("package", ["ltr", "recall"])
def test_lazy_packages_refuse_unknown_names(package):
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        _ = module.nope


@pytest.mark.parametrize(("package", "names"), sorted(PROMISED.items()))
def test_promised_names_exist(package, names):
    module = importlib.import_module(package)
    assert set(names) <= set(module.__all__)


def test_promised_names_work_end_to_end(tmp_path):
    """read_logs -> join_samples -> a metric; the one path every user starts with."""
    ltr = importlib.import_module("ltr")
    metrics = importlib.import_module("eval.metrics")
    logs = ltr.read_logs(ROOT / "fixtures" / "world")
    samples = ltr.join_samples(logs).samples
    assert len(samples) == len(logs.exposures.drop_duplicates(["request_id", "item_id"]))
    has_score = samples["rank_score"].notna().to_numpy()
    y = samples["click"].to_numpy()[has_score]
    score = samples["rank_score"].to_numpy()[has_score]
    got = metrics.auc(y, score)
    # Mann-Whitney by ranks (average ranks for ties) as the independent reference.
    ranks = pd.Series(score).rank().to_numpy()
    n_pos = y.sum()
    expected = (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (len(y) - n_pos))
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0.6 < got < 0.9
    assert np.isfinite(metrics.logloss(y, np.clip(score, 1e-6, 1 - 1e-6)))
