"""What ``python -m ltr.logs validate`` and ``import`` print: tables, calendar days, attributes, join, funnel."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ltr.logs._contract import Logs
from ltr.logs._coverage import attribute_coverage
from ltr.logs._funnel import bucket_funnel
from ltr.logs._join import JoinResult
from ltr.logs._time import day_index, format_day

__all__ = ["daily_counts", "validation_text"]


def daily_counts(logs: Logs) -> pd.DataFrame:
    """Rows per calendar day (in ``logs.tz``) of requests, exposures, clicks (and orders).

    Returns
    -------
    DataFrame
        Indexed by ``YYYY-MM-DD`` (every day from the first to the last, gaps included), one
        int64 column per table.
    """
    tables = {"requests": logs.requests, "exposures": logs.exposures, "clicks": logs.clicks}
    if logs.orders is not None and len(logs.orders):
        tables["orders"] = logs.orders
    days = {name: day_index(frame["ts"].to_numpy(), logs.tz) for name, frame in tables.items()}
    first = min(int(d.min()) for d in days.values() if len(d))
    last = max(int(d.max()) for d in days.values() if len(d))
    counts = {name: np.bincount(d - first, minlength=last - first + 1) for name, d in days.items()}
    out = pd.DataFrame(counts, index=[format_day(day) for day in range(first, last + 1)]).astype(np.int64)
    out.index.name = "day"
    return out


def validation_text(logs: Logs, path: str, result: JoinResult) -> str:
    """The report of ``python -m ltr.logs validate``: tables, days, attributes, join, funnel."""
    lines = [f"logs OK: {path}"]
    lines += [f"  {name:<11} {len(frame):>10,d} rows" for name, frame in logs.tables().items()]
    daily = daily_counts(logs)
    lines += ["", f"Days in {logs.tz}: {daily.index[0]} .. {daily.index[-1]} ({len(daily)} days)",
              daily.to_string(), ""]
    lines += [attribute_coverage(logs).to_text(), "", result.report.to_text(), "", "Funnel per bucket"]
    lines.append(bucket_funnel(logs, result.samples).to_string(float_format=lambda v: f"{v:.4f}"))
    return "\n".join(lines)
