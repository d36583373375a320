"""The shared log layer: contract and validation, readers, importer, join, funnel, calendar days.

``recall`` and ``eval`` build on these names. ``python -m ltr.logs validate LOGS`` checks a log
directory against the contract; ``python -m ltr.logs import FLAT --out LOGS ...`` turns a
one-row-per-exposure export into one; ``python -m ltr.logs partition LOGS --out PLOGS`` writes
the hive-partitioned layout the Dask engine reads (see ``ltr/logs/__main__.py``).

What validated :class:`Logs` guarantee (the contract other packages rely on):

* ids (``request_id``, ``user_id``, ``item_id``) are int64 or str, one type per column across
  tables, never missing (orders may miss one of request_id/user_id: nullable ``Int64`` or None);
* every timestamp is int64 epoch seconds (UTC). Numeric input is read in ``ts_unit`` (``"s"``
  by default; ``"ms"``, ``"us"``, ``"ns"``) and must be a date in 2000..2100 in that unit, else
  the error names the unit the numbers look like ("these look like milliseconds: pass
  --ts-unit ms"). Aware datetimes of any resolution and ISO strings with an offset are
  accepted; naive datetimes and offset-less strings are refused even with ``tz`` (see
  :func:`~ltr.logs._columns.to_epoch_ns`). Calendar days are counted in ``Logs.tz`` by
  :func:`day_index`, the one implementation (any datetime resolution, DST included);
* missing attributes are data, not errors. ``items.category`` holds strings (object dtype;
  integer and integral-float categories become their decimal text) and a **missing category is
  a missing value (NaN, ``pd.isna`` is true), never an invented string**; other item and user
  attribute columns keep their dtype and may hold missing values; a missing ``embedding`` is
  None/NaN; exposed or candidate items absent from ``items`` and users absent from ``users``
  are accepted. Features and recall sources map all of these to an explicit missing level.
  :func:`attribute_coverage` counts them (``validate`` prints it) and :class:`JoinReport`
  counts the samples concerned (``samples_item_not_in_items``,
  ``samples_item_without_category``, ``samples_user_not_in_users``);
* the optional ``outcomes`` table (request_id, item_id, ts and numeric outcome columns such
  as watch time or likes) holds what happened *after* an exposure: labels for other tasks and
  history for later days, never features of the exposure itself (:func:`join_samples` does not
  attach it). Each row describes an exposure (its request_id x item_id is in ``exposures``);
  ``ts`` is the exposure's time, so a point-in-time reader uses only rows of earlier days.

Modules: ``_contract`` (tables, :class:`Logs`, :class:`LogValidationError`), ``_columns`` and
``_validate`` (:func:`from_frames`), ``_read`` (:func:`read_logs`, :func:`write_logs`),
``_interactions`` (:func:`from_interactions`, the importer), ``_join`` (:func:`join_samples`),
``_partitioned`` (the hive-partitioned layout, :func:`write_partitioned`),
``_coverage`` (:func:`attribute_coverage`), ``_funnel`` (:func:`bucket_funnel`), ``_history``
(:class:`UserHistory`), ``_time`` (units and calendar days), ``_summary`` (the CLI's report).
"""
from __future__ import annotations

from ltr.logs._contract import TABLE_SPECS, Logs, LogValidationError, TableSpec
from ltr.logs._coverage import AttributeCoverage, attribute_coverage
from ltr.logs._funnel import bucket_funnel, funnel_counts, funnel_table
from ltr.logs._history import UserHistory, events_with_users
from ltr.logs._interactions import from_interactions
from ltr.logs._join import JoinReport, JoinResult, join_samples
from ltr.logs._partitioned import is_partitioned, write_partitioned
from ltr.logs._read import read_logs, write_logs
from ltr.logs._summary import daily_counts
from ltr.logs._time import SECONDS_PER_DAY, TS_UNITS, as_day, day_index, format_day, local_seconds, parse_day
from ltr.logs._validate import from_frames

__all__ = [
    "SECONDS_PER_DAY",
    "TABLE_SPECS",
    "TS_UNITS",
    "AttributeCoverage",
    "JoinReport",
    "JoinResult",
    "LogValidationError",
    "Logs",
    "TableSpec",
    "UserHistory",
    "as_day",
    "attribute_coverage",
    "bucket_funnel",
    "daily_counts",
    "day_index",
    "events_with_users",
    "format_day",
    "from_frames",
    "from_interactions",
    "funnel_counts",
    "funnel_table",
    "is_partitioned",
    "join_samples",
    "local_seconds",
    "parse_day",
    "read_logs",
    "write_logs",
    "write_partitioned",
]
