"""scikit-learn's estimator checks for our transformers, minus the one that cannot apply.

``check_array_api_input`` tests support for non-numpy array namespaces; our transformers are
numpy-only (they do not declare ``array_api_support``), and the check skips itself unless
SciPy's array API mode is on. Leaving it out keeps the suite free of skips.
"""
from __future__ import annotations

import functools

import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

_NOT_APPLICABLE = {"check_array_api_input"}


def _name(check) -> str:
    return check.func.__name__ if isinstance(check, functools.partial) else check.__name__


def sklearn_checks(estimators):
    """``pytest.mark.parametrize("estimator, check", ...)`` over every applicable check."""
    params = [
        pytest.param(est, check, id=f"{est!r}-{_name(check)}")
        for est in estimators
        for est, check in estimator_checks_generator(est, legacy=True)
        if _name(check) not in _NOT_APPLICABLE
    ]
    return pytest.mark.parametrize(("estimator", "check"), params)
