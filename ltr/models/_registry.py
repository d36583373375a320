"""The models by name: :func:`make_model` for training, :func:`load_model` for a saved directory."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ltr._validation import check_choice
from ltr.models._base import PARAMS_FILE, RankerModel
from ltr.models._lgbm import LightGBMRanker
from ltr.models._lr import LogisticRegressionRanker

__all__ = ["MODELS", "load_model", "make_model"]

MODELS: dict[str, type[LogisticRegressionRanker] | type[LightGBMRanker]] = {
    LogisticRegressionRanker.name: LogisticRegressionRanker,
    LightGBMRanker.name: LightGBMRanker,
}


def make_model(name: str, **params: Any) -> RankerModel:
    """Construct a model by its registry name (``"lr"`` or ``"lgbm"``).

    Parameters are only stored here; they are checked when the model is fitted.

    Raises
    ------
    ValueError
        An unknown name or parameter.
    """
    cls = MODELS[check_choice(name, "model", MODELS)]
    unknown = sorted(set(params) - set(cls._param_names))
    if unknown:
        raise ValueError(
            f"parameter for model {name!r} must be one of {list(cls._param_names)}. Got {unknown[0]!r} instead."
        )
    return cls(**params)


def load_model(directory: str | Path) -> RankerModel:
    """Load a model saved by ``save`` whatever its kind (read from ``params.json``).

    Raises
    ------
    ValueError
        No saved model in ``directory``, or one of an unknown kind.
    """
    root = Path(directory)
    path = root / PARAMS_FILE
    if not path.is_file():
        raise ValueError(f"{root} must hold a saved model ({PARAMS_FILE}). Got no such file instead.")
    name = json.loads(path.read_text()).get("model")
    if name not in MODELS:
        raise ValueError(f"model in {path} must be one of {sorted(MODELS)}. Got {name!r} instead.")
    return MODELS[name].load(root)
