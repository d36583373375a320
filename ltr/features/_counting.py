"""Feature block: windowed exposures, clicks, orders and smoothed CTR per key family.

For each key family (item, user, user x category ...) and trailing window ``w`` days, the
features of a row are the family's counts over ``[end - w, end)`` for the row's key and
the CTR smoothed towards the family's Beta prior: ``{family}_exp_{w}d``,
``{family}_clk_{w}d``, ``{family}_ord_{w}d``, ``{family}_ctr_{w}d``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ltr.features._blocks import Batch
from ltr.features._day_tables import window_columns
from ltr.features._pit_stats import COUNT_NAMES, DailyStats
from ltr.features._smoothing import BetaPrior, fit_beta_prior

__all__ = ["WindowedCounts", "fit_priors"]

_COUNT_SHORT = {"exposures": "exp", "clicks": "clk", "orders": "ord"}


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
    """

    families: Mapping[str, tuple[str, ...]]
    windows: tuple[int, ...]
    priors: Mapping[str, BetaPrior]

    @property
    def names(self) -> tuple[str, ...]:
        """Family by family, window by window: exposures, clicks, orders, CTR."""
        names: list[str] = []
        for family in self.families:
            for w in self.windows:
                names.extend(f"{family}_{_COUNT_SHORT[name]}_{w}d" for name in COUNT_NAMES)
                names.append(f"{family}_ctr_{w}d")
        return tuple(names)

    @property
    def value_names(self) -> tuple[str, ...]:
        """None: every column is binned only."""
        return ()

    def columns(self, batch: Batch) -> list[np.ndarray]:
        """The columns of :attr:`names` for the batch rows."""
        windows = list(self.windows)
        cache = batch.cache
        # A request (or a chunk of a few days) has one or a few cut-offs: per-key values
        # can then come from per-day tables of every key.
        days = cache.batch_days(batch.end) if cache is not None else None
        columns: list[np.ndarray] = []
        for family in self.families:
            table = batch.tables.stats[family]
            prior = self.priors[family]
            key = table.key_index(batch.frame)
            if cache is not None and days is not None and table.key_codes.size <= cache.max_keys:
                if len(days) == 1:
                    values = cache.values(family, table, prior, days[0], windows, days, len(self.families))[key]
                else:
                    values = np.empty((key.size, (len(COUNT_NAMES) + 1) * len(windows)))
                    for d in days:
                        rows = batch.end == d
                        day_values = cache.values(family, table, prior, d, windows, days, len(self.families))
                        values[rows] = day_values[key[rows]]
                columns.extend(values[:, c] for c in range(values.shape[1]))
            else:
                columns.extend(window_columns(table, prior, key, batch.end, windows, batch.span))
        return columns
