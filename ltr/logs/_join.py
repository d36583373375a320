"""Join logs into exposure-level samples with labels, accounting for every input row.

One sample per distinct exposed (request_id, item_id). When a ``candidates`` table exists,
exposures are inner-joined with it (the candidate columns such as ``rank_pos``,
``rank_score``, ``recall_source`` come along). Labels:

* ``click`` = 1 when a click on that (request_id, item_id) exists;
* ``order`` = 1 when an order is attributed to it, either by its ``request_id`` or, failing
  that, to the user's latest matched click on the same item at most
  ``attribution_window_days`` before the order.

:class:`JoinReport` accounts for every input row; its counts per table sum to the input.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ltr._validation import check_float
from ltr.logs._contract import Logs
from ltr.logs._coverage import missing_attribute_counts
from ltr.logs._time import SECONDS_PER_DAY, day_index

__all__ = ["JoinReport", "JoinResult", "join_samples"]

_KEY = ["request_id", "item_id"]


@dataclass(frozen=True)
class JoinReport:
    """Where every input row went.

    ``exposures_in = exposures_kept + exposures_duplicate + exposures_without_candidate``;
    ``clicks_in = clicks_matched + clicks_unmatched`` (``clicks_repeat`` counts the matched
    clicks beyond the first on the same exposure); ``orders_in = orders_by_request +
    orders_by_click + orders_unattributed``; ``candidates_in = candidates_exposed +
    candidates_not_exposed``.
    """

    exposures_in: int
    exposures_kept: int
    exposures_duplicate: int
    exposures_without_candidate: int
    clicks_in: int
    clicks_matched: int
    clicks_unmatched: int
    clicks_repeat: int
    orders_in: int
    orders_by_request: int
    orders_by_click: int
    orders_unattributed: int
    candidates_in: int
    candidates_exposed: int
    candidates_not_exposed: int
    samples_item_not_in_items: int
    samples_item_without_category: int
    samples_user_not_in_users: int
    attribution_window_days: float

    def to_dict(self) -> dict:
        """Plain-number dictionary (JSON-ready)."""
        return asdict(self)

    def table(self) -> pd.DataFrame:
        """The report as rows of (table, outcome, rows)."""
        rows = []
        for name, value in asdict(self).items():
            if name == "attribution_window_days":
                continue
            table, outcome = name.split("_", 1)
            rows.append((table, outcome, int(value)))
        return pd.DataFrame(rows, columns=["table", "outcome", "rows"])

    def to_text(self) -> str:
        """Human-readable report with the accounting identities."""
        def line(label: str, value: int, total: int) -> str:
            share = f"{value / total:7.2%}" if total else "      -"
            return f"    {label:<44} {value:>10,d}  {share}"

        out = ["Join report (every input row accounted for)"]
        out.append(f"  exposures in: {self.exposures_in:,d}")
        out.append(line("kept (one sample per request x item)", self.exposures_kept, self.exposures_in))
        out.append(line("duplicate (request x item seen before)", self.exposures_duplicate, self.exposures_in))
        out.append(line("no candidate row (dropped by inner join)", self.exposures_without_candidate,
                        self.exposures_in))
        if self.candidates_in:
            out.append(f"  candidates in: {self.candidates_in:,d}")
            out.append(line("exposed", self.candidates_exposed, self.candidates_in))
            out.append(line("not exposed", self.candidates_not_exposed, self.candidates_in))
        out.append(f"  clicks in: {self.clicks_in:,d}")
        out.append(line("matched to a kept exposure", self.clicks_matched, self.clicks_in))
        out.append(line("  of which repeat clicks on the same exposure", self.clicks_repeat, self.clicks_in))
        out.append(line("unmatched (no kept exposure)", self.clicks_unmatched, self.clicks_in))
        out.append(f"  orders in: {self.orders_in:,d}")
        out.append(line("attributed by request_id", self.orders_by_request, self.orders_in))
        out.append(line(f"attributed to latest click (<= {self.attribution_window_days:g} d)",
                        self.orders_by_click, self.orders_in))
        out.append(line("unattributed", self.orders_unattributed, self.orders_in))
        out.append(f"  samples with missing attributes (kept; they get the missing level) of {self.exposures_kept:,d}:")
        out.append(line("item not in the items table", self.samples_item_not_in_items, self.exposures_kept))
        out.append(line("item without a category", self.samples_item_without_category, self.exposures_kept))
        out.append(line("user not in the users table", self.samples_user_not_in_users, self.exposures_kept))
        return "\n".join(out)


@dataclass(frozen=True)
class JoinResult:
    """Output of :func:`join_samples`: the samples frame and its :class:`JoinReport`."""

    samples: pd.DataFrame
    report: JoinReport


def join_samples(logs: Logs, attribution_window_days: float = 7.0) -> JoinResult:
    """Build one labelled sample per exposure, with a full accounting of dropped rows.

    Parameters
    ----------
    logs : Logs
        Validated logs (:func:`ltr.read_logs`).
    attribution_window_days : float, default 7
        Orders that cannot be matched by request_id go to the user's latest matched click
        on the same item at most this many days earlier.

    Returns
    -------
    JoinResult
        ``samples`` has one row per kept exposure: ``request_id, user_id, item_id, ts, day,
        position``, request columns (``bucket`` and context; ``request_ts``), candidate
        columns when candidates exist, and int8 labels ``click`` and ``order``; sorted by
        (ts, request_id, position).
    """
    check_float(attribution_window_days, "attribution_window_days", low=0)

    exposures = logs.exposures
    order = np.lexsort((exposures["position"].to_numpy(), exposures["ts"].to_numpy()))
    ordered = exposures.iloc[order]
    dup = ordered.duplicated(_KEY, keep="first").to_numpy()
    samples = ordered.loc[~dup]
    n_unique = len(samples)

    n_cand = n_exposed = 0
    if logs.candidates is not None:
        cand = logs.candidates
        extra = [c for c in cand.columns if c not in _KEY]
        clash = [c for c in extra if c in samples.columns]
        cand = cand.rename(columns={c: f"candidate_{c}" for c in clash})
        samples = samples.merge(cand, on=_KEY, how="inner", validate="one_to_one")
        n_cand, n_exposed = len(cand), len(samples)

    req = logs.requests.rename(columns={"ts": "request_ts"})
    clash = [c for c in req.columns if c in samples.columns and c != "request_id"]
    req = req.rename(columns={c: f"request_{c}" for c in clash})
    samples = samples.merge(req, on="request_id", how="left", validate="many_to_one")
    samples["day"] = day_index(samples["ts"].to_numpy(), logs.tz)

    clicks = logs.clicks
    click_hit = _key_isin(clicks, samples)
    clicked_keys = clicks.loc[click_hit, _KEY].drop_duplicates()
    samples["click"] = _key_isin(samples, clicked_keys).astype(np.int8)

    n_orders = by_request = by_click = 0
    samples["order"] = np.int8(0)
    if logs.orders is not None:
        orders = logs.orders
        n_orders = len(orders)
        hit = np.zeros(n_orders, dtype=bool)
        if "request_id" in orders.columns:
            has_req = orders["request_id"].notna().to_numpy()
            hit = has_req & _key_isin(orders, samples)
        by_request = int(hit.sum())
        ordered_keys = [orders.loc[hit, _KEY]]
        rest = orders.loc[~hit]
        if len(rest):
            matched_keys = _attribute_to_clicks(rest, clicks.loc[click_hit], logs.requests,
                                                attribution_window_days * SECONDS_PER_DAY)
            by_click = len(matched_keys)
            ordered_keys.append(matched_keys)
        keys = pd.concat(ordered_keys, ignore_index=True)
        keys = keys.astype({"request_id": samples["request_id"].dtype, "item_id": samples["item_id"].dtype})
        samples["order"] = _key_isin(samples, keys).astype(np.int8)

    samples = samples.sort_values(["ts", "request_id", "position"], kind="stable").reset_index(drop=True)
    report = JoinReport(
        exposures_in=len(exposures),
        exposures_kept=len(samples),
        exposures_duplicate=int(dup.sum()),
        exposures_without_candidate=n_unique - len(samples),
        clicks_in=len(clicks),
        clicks_matched=int(click_hit.sum()),
        clicks_unmatched=int((~click_hit).sum()),
        clicks_repeat=int(click_hit.sum()) - len(clicked_keys),
        orders_in=n_orders,
        orders_by_request=by_request,
        orders_by_click=by_click,
        orders_unattributed=n_orders - by_request - by_click,
        candidates_in=n_cand,
        candidates_exposed=n_exposed,
        candidates_not_exposed=n_cand - n_exposed,
        **missing_attribute_counts(samples, logs.items, logs.users),
        attribution_window_days=float(attribution_window_days),
    )
    return JoinResult(samples=samples, report=report)


def _key_isin(frame: pd.DataFrame, keys: pd.DataFrame) -> np.ndarray:
    """Row mask: (request_id, item_id) of ``frame`` occurs in ``keys``."""
    index = pd.MultiIndex.from_frame(keys[_KEY].astype(object))
    probe = pd.MultiIndex.from_frame(frame[_KEY].astype(object))
    return probe.isin(index)


def _attribute_to_clicks(orders: pd.DataFrame, clicks: pd.DataFrame, requests: pd.DataFrame,
                         window_seconds: float) -> pd.DataFrame:
    """(request_id, item_id) of the latest click of the order's user on the item within the window."""
    user_of_request = requests.set_index("request_id")["user_id"]
    orders = orders.copy()
    user = pd.Series(pd.NA, index=orders.index, dtype=object)
    if "user_id" in orders.columns:
        user = orders["user_id"].astype(object)
    if "request_id" in orders.columns:
        missing = user.isna() & orders["request_id"].notna()
        user[missing] = orders.loc[missing, "request_id"].map(user_of_request).astype(object)
    orders["_user"] = user
    orders = orders.loc[orders["_user"].notna()]
    if len(orders) == 0 or len(clicks) == 0:
        return pd.DataFrame({"request_id": [], "item_id": []})
    clicks = clicks[[*_KEY, "ts"]].copy()
    clicks["_user"] = clicks["request_id"].map(user_of_request).astype(object)
    # merge_asof needs one key dtype on both sides; ids are compared as their string form.
    left = pd.DataFrame({"_user": orders["_user"].astype(str), "_item": orders["item_id"].astype(str),
                         "ts": orders["ts"].astype(np.int64)}).sort_values("ts", kind="stable")
    right = pd.DataFrame({"_user": clicks["_user"].astype(str), "_item": clicks["item_id"].astype(str),
                          "ts": clicks["ts"].astype(np.int64), "request_id": clicks["request_id"],
                          "item_id": clicks["item_id"]}).sort_values("ts", kind="stable")
    matched = pd.merge_asof(left, right, on="ts", by=["_user", "_item"], direction="backward",
                            tolerance=int(window_seconds), allow_exact_matches=True)
    matched = matched.loc[matched["request_id"].notna(), _KEY]
    return matched.reset_index(drop=True)
