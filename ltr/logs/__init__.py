"""The shared log layer: contract and validation, readers, join, funnel counts, calendar days.

``recall`` and ``eval`` build on these names; ``python -m ltr.logs validate LOGS`` checks a
log directory against the contract (see ``ltr/logs/__main__.py``).

Modules: ``_contract`` (tables, :class:`Logs`, :class:`LogValidationError`), ``_columns`` and
``_validate`` (:func:`from_frames`), ``_read`` (:func:`read_logs`, :func:`write_logs`),
``_interactions`` (:func:`from_interactions`), ``_join`` (:func:`join_samples`), ``_funnel``
(:func:`bucket_funnel`), ``_history`` (:class:`UserHistory`), ``_time`` (calendar days).
"""
from __future__ import annotations

from ltr.logs._contract import TABLE_SPECS, Logs, LogValidationError, TableSpec
from ltr.logs._funnel import bucket_funnel
from ltr.logs._history import UserHistory, events_with_users
from ltr.logs._interactions import from_interactions
from ltr.logs._join import JoinReport, JoinResult, join_samples
from ltr.logs._read import read_logs, write_logs
from ltr.logs._time import SECONDS_PER_DAY, as_day, day_index, format_day, parse_day
from ltr.logs._validate import from_frames

__all__ = [
    "SECONDS_PER_DAY",
    "TABLE_SPECS",
    "JoinReport",
    "JoinResult",
    "LogValidationError",
    "Logs",
    "TableSpec",
    "UserHistory",
    "as_day",
    "bucket_funnel",
    "day_index",
    "events_with_users",
    "format_day",
    "from_frames",
    "from_interactions",
    "join_samples",
    "parse_day",
    "read_logs",
    "write_logs",
]
