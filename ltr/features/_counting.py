"""Feature block: windowed exposures, clicks, orders and smoothed CTR per key family.

For each key family (item, user, user x category ...) and trailing window ``w`` days, the
features of a row are the family's counts over ``[end - w, end)`` for the row's key and
the CTR smoothed towards the family's Beta prior: ``{family}_exp_{w}d``,
``{family}_clk_{w}d``, ``{family}_ord_{w}d``, ``{family}_ctr_{w}d``; window 0 is all history
(``{family}_exp_all`` ...). Families with outcomes add the mean outcome of the window's
exposures (``{family}_{outcome}_{w}d``).

A *frozen* family's statistics stop at a fixed cut-off (the end of the training window): a
row's cut-off is the earlier of its own and that one. Training rows are unaffected (their own
cut-off is earlier); later rows see the statistics as they were when the model was trained.
That is the refresh policy of user-side propensities (see ``FeatureBuilder``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ltr.features._blocks import Batch
from ltr.features._day_tables import window_columns
from ltr.features._pit_stats import COUNT_NAMES, DailyStats
from ltr.features._smoothing import BetaPrior, fit_beta_prior

__all__ = ["ClickRecency", "WindowedCounts", "fit_priors", "window_name"]

_COUNT_SHORT = {"exposures": "exp", "clicks": "clk", "orders": "ord"}


def window_name(window: int) -> str:
    """``"7d"`` for a window of 7 days, ``"all"`` for all history (window 0)."""
    return f"{window}d" if window > 0 else "all"


def fit_priors(stats: Mapping[str, DailyStats], method: str) -> dict[str, BetaPrior]:
    """Beta prior of each family's CTR, fitted on the per-key totals of its table."""
    priors = {}
    for family, table in stats.items():
        totals = table.totals()
        priors[family] = fit_beta_prior(totals["clicks"], totals["exposures"], method=method)
    return priors


@dataclass(frozen=True, eq=False)
class WindowedCounts:
    """Feature block: counts and smoothed CTR of every key family over trailing windows.

    Parameters
    ----------
    families : mapping of str -> tuple of str
        Key columns of each family, in output order.
    windows : tuple of int
        Window lengths in days.
    priors : mapping of str -> BetaPrior
        Each family's prior.
    frozen_end : mapping of str -> int, default {}
        Cut-off of each frozen family (in the tables' time unit).
    outcomes : mapping of str -> tuple of str, default {}
        Outcomes whose means each family reports.
    """

    families: Mapping[str, tuple[str, ...]]
    windows: tuple[int, ...]
    priors: Mapping[str, BetaPrior]
    frozen_end: Mapping[str, int] = field(default_factory=dict)
    outcomes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """Family by family, window by window: exposures, clicks, orders, CTR, outcome means."""
        names: list[str] = []
        for family in self.families:
            for w in self.windows:
                tail = window_name(w)
                names.extend(f"{family}_{_COUNT_SHORT[name]}_{tail}" for name in COUNT_NAMES)
                names.append(f"{family}_ctr_{tail}")
                names.extend(f"{family}_{outcome}_{tail}" for outcome in self.outcomes.get(family, ()))
        return tuple(names)

    @property
    def value_names(self) -> tuple[str, ...]:
        """None: every column is binned only."""
        return ()

    def columns(self, batch: Batch) -> list[np.ndarray]:
        """The columns of :attr:`names` for the batch rows."""
        columns: list[np.ndarray] = []
        for family in self.families:
            end = batch.end
            if family in self.frozen_end:
                end = np.minimum(end, self.frozen_end[family])
            columns.extend(self._family_columns(family, batch, end))
        return columns

    def _family_columns(self, family: str, batch: Batch, end: np.ndarray) -> list[np.ndarray]:
        windows = list(self.windows)
        outcomes = self.outcomes.get(family, ())
        table = batch.tables.stats[family]
        prior = self.priors[family]
        key = table.key_index(batch.frame)
        cache = batch.cache
        # A request (or a chunk of a few days) has one or a few cut-offs: per-key values
        # can then come from per-day tables of every key.
        days = cache.batch_days(end) if cache is not None else None
        if cache is None or days is None or table.key_codes.size > cache.max_keys:
            return window_columns(table, prior, key, end, windows, batch.span, outcomes)
        n_families = len(self.families)
        if len(days) == 1:
            values = cache.values(family, table, prior, days[0], windows, days, n_families, outcomes)[key]
        else:
            values = np.empty((key.size, (len(COUNT_NAMES) + 1 + len(outcomes)) * len(windows)))
            for d in days:
                rows = end == d
                values[rows] = cache.values(family, table, prior, d, windows, days, n_families, outcomes)[key[rows]]
        return [values[:, c] for c in range(values.shape[1])]


@dataclass(frozen=True, eq=False)
class ClickRecency:
    """Feature block: days since the key's last click before the cut-off, per family.

    ``{family}_days_since_click``: for user x item, user x author, user x category, how long
    ago the user last clicked this item, author or category (NaN: never before the cut-off).

    Parameters
    ----------
    families : tuple of str
        Families (their tables) to read.
    frozen_end : mapping of str -> int, default {}
        As in :class:`WindowedCounts`.
    """

    families: tuple[str, ...]
    frozen_end: Mapping[str, int] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """One column per family."""
        return tuple(f"{family}_days_since_click" for family in self.families)

    @property
    def value_names(self) -> tuple[str, ...]:
        """None: binned only."""
        return ()

    def columns(self, batch: Batch) -> list[np.ndarray]:
        """Days (fractional with second tables) from the last click to the row's cut-off."""
        out = []
        for family in self.families:
            table = batch.tables.stats[family]
            end = batch.end
            if family in self.frozen_end:
                end = np.minimum(end, self.frozen_end[family])
            last = table.last_time(table.key_index(batch.frame), end)
            out.append((end - last) / batch.span)
        return out
