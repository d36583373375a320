"""The warning every metric of :mod:`ltr.metrics` gives when its value is undefined."""
from __future__ import annotations

import warnings

__all__ = ["MetricWarning", "warn_undefined"]


class MetricWarning(UserWarning):
    """A metric is undefined for this input (e.g. one class only) and was returned as NaN."""


def warn_undefined(message: str) -> None:
    """Warn with :class:`MetricWarning`, pointing at the caller of the public metric."""
    # stacklevel 3: this helper, then the public metric, then the user's line.
    warnings.warn(message, MetricWarning, stacklevel=3)
