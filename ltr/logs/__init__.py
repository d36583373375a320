"""The shared log layer: contract and validation, readers, join, funnel counts, calendar days.

``recall`` and ``eval`` build on these names; ``python -m ltr.logs validate LOGS`` checks a
log directory against the contract (see ``ltr/logs/__main__.py``).
"""
from __future__ import annotations

from ltr.logs._contract import (
    TABLE_SPECS,
    Logs,
    LogValidationError,
    TableSpec,
    from_frames,
    from_interactions,
    read_logs,
    write_logs,
)
from ltr.logs._funnel import bucket_funnel
from ltr.logs._history import UserHistory, events_with_users
from ltr.logs._join import JoinReport, JoinResult, join_samples
from ltr.logs._time import SECONDS_PER_DAY, day_index, format_day, parse_day

__all__ = [
    "SECONDS_PER_DAY",
    "TABLE_SPECS",
    "JoinReport",
    "JoinResult",
    "LogValidationError",
    "Logs",
    "TableSpec",
    "UserHistory",
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
