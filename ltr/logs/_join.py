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

__all__ = ["JoinReport", "JoinResult", "PartialJoin", "attribute_orders", "join_partition", "join_report",
           "join_samples", "label_orders"]

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


@dataclass(frozen=True)
class PartialJoin:
    """What one partition of the logs contributes to the join (see :func:`join_partition`).

    ``samples`` lack the ``order`` label; ``counts`` are the :class:`JoinReport` fields a
    partition knows (all but ``orders_by_click`` and ``orders_unattributed``);
    ``order_keys`` are the (request_id, item_id) of orders matched by request; ``rest_orders``
    (``_user``, ``_item``, ``ts``) are the orders left for attribution to a click and
    ``clicks`` (``_user``, ``_item``, ``ts``, ``request_id``, ``item_id``) the matched clicks
    they may go to. Users and items are compared as their string form.
    """

    samples: pd.DataFrame
    counts: dict[str, int]
    order_keys: pd.DataFrame
    rest_orders: pd.DataFrame
    clicks: pd.DataFrame


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

    Notes
    -----
    Everything but the attribution of orders to clicks follows a request_id, so it runs per
    partition of a partitioned log directory (:func:`join_partition`) and the counts add up;
    the attribution (:func:`attribute_orders`) sees the orders and clicks of all partitions.
    """
    check_float(attribution_window_days, "attribution_window_days", low=0)
    part = join_partition(logs)
    attributed = attribute_orders(part.rest_orders, part.clicks, attribution_window_days)
    samples = label_orders(part, attributed)
    counts = {**part.counts, **missing_attribute_counts(samples, logs.items, logs.users)}
    return JoinResult(samples=samples, report=join_report(counts, len(attributed), attribution_window_days))


def join_partition(logs: Logs) -> PartialJoin:
    """The part of :func:`join_samples` that follows request ids (one partition's worth)."""
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

    order_keys = pd.DataFrame({"request_id": samples["request_id"].iloc[:0], "item_id": samples["item_id"].iloc[:0]})
    rest = pd.DataFrame({"_user": pd.Series([], dtype=str), "_item": pd.Series([], dtype=str),
                         "ts": np.zeros(0, np.int64)})
    n_orders = by_request = 0
    if logs.orders is not None:
        orders = logs.orders
        n_orders = len(orders)
        hit = np.zeros(n_orders, dtype=bool)
        if "request_id" in orders.columns:
            hit = orders["request_id"].notna().to_numpy() & _key_isin(orders, samples)
        by_request = int(hit.sum())
        order_keys = orders.loc[hit, _KEY]
        rest = _order_users(orders.loc[~hit], logs.requests)
    counts = dict(
        exposures_in=len(exposures), exposures_kept=len(samples), exposures_duplicate=int(dup.sum()),
        exposures_without_candidate=n_unique - len(samples), clicks_in=len(clicks),
        clicks_matched=int(click_hit.sum()), clicks_unmatched=int((~click_hit).sum()),
        clicks_repeat=int(click_hit.sum()) - len(clicked_keys), orders_in=n_orders, orders_by_request=by_request,
        candidates_in=n_cand, candidates_exposed=n_exposed, candidates_not_exposed=n_cand - n_exposed)
    matched = _click_users(clicks.loc[click_hit], logs.requests)
    return PartialJoin(samples=samples, counts=counts, order_keys=order_keys, rest_orders=rest, clicks=matched)


def label_orders(part: PartialJoin, attributed: pd.DataFrame) -> pd.DataFrame:
    """The partition's samples with the ``order`` label (orders matched by request or attributed
    to a click; ``attributed`` may hold keys of other partitions), sorted by (ts, request_id, position)."""
    samples = part.samples
    samples["order"] = np.int8(0)
    keys = pd.concat([part.order_keys, attributed], ignore_index=True)
    if len(keys):
        keys = keys.astype({"request_id": samples["request_id"].dtype, "item_id": samples["item_id"].dtype})
        samples["order"] = _key_isin(samples, keys).astype(np.int8)
    return samples.sort_values(["ts", "request_id", "position"], kind="stable").reset_index(drop=True)


def join_report(counts: dict[str, int], orders_by_click: int, attribution_window_days: float) -> JoinReport:
    """The :class:`JoinReport` of partition ``counts`` added up (every field but the two that
    the attribution decides) and the number of orders attributed to a click."""
    fields = {**counts, "orders_by_click": int(orders_by_click),
              "orders_unattributed": int(counts["orders_in"] - counts["orders_by_request"] - orders_by_click)}
    return JoinReport(**{name: int(fields[name]) for name in JoinReport.__dataclass_fields__
                         if name != "attribution_window_days"},
                      attribution_window_days=float(attribution_window_days))


def _key_isin(frame: pd.DataFrame, keys: pd.DataFrame) -> np.ndarray:
    """Row mask: (request_id, item_id) of ``frame`` occurs in ``keys``."""
    index = pd.MultiIndex.from_frame(keys[_KEY].astype(object))
    probe = pd.MultiIndex.from_frame(frame[_KEY].astype(object))
    return probe.isin(index)


def _order_users(orders: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """``_user``, ``_item`` (as strings) and ``ts`` of orders: the order's user_id, else its request's user."""
    user_of_request = requests.set_index("request_id")["user_id"]
    user = pd.Series(pd.NA, index=orders.index, dtype=object)
    if "user_id" in orders.columns:
        user = orders["user_id"].astype(object)
    if "request_id" in orders.columns:
        missing = user.isna() & orders["request_id"].notna()
        user[missing] = orders.loc[missing, "request_id"].map(user_of_request).astype(object)
    known = user.notna().to_numpy()
    # merge_asof needs one key dtype on both sides; ids are compared as their string form.
    return pd.DataFrame({"_user": user[known].astype(str).to_numpy(),
                         "_item": orders["item_id"].to_numpy()[known].astype(str),
                         "ts": orders["ts"].to_numpy()[known].astype(np.int64)})


def _click_users(clicks: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """Clicks with their user (``_user``) and item (``_item``) as strings, in input order."""
    user_of_request = requests.set_index("request_id")["user_id"]
    return pd.DataFrame({"_user": clicks["request_id"].map(user_of_request).astype(object).astype(str).to_numpy(),
                         "_item": clicks["item_id"].astype(str).to_numpy(),
                         "ts": clicks["ts"].to_numpy().astype(np.int64),
                         "request_id": clicks["request_id"].to_numpy(), "item_id": clicks["item_id"].to_numpy()})


def attribute_orders(orders: pd.DataFrame, clicks: pd.DataFrame, attribution_window_days: float) -> pd.DataFrame:
    """(request_id, item_id) of the user's latest matched click on the item within the window
    before each order (one row per attributed order).

    ``orders`` and ``clicks`` are the ``rest_orders`` and ``clicks`` of :class:`PartialJoin`,
    of all partitions in partition order (ties in time keep that order).
    """
    if len(orders) == 0 or len(clicks) == 0:
        return pd.DataFrame({"request_id": [], "item_id": []})
    # One key dtype on both sides, whatever the partitions' frames gave the empty ones.
    keys = {"_user": str, "_item": str}
    left = orders[["_user", "_item", "ts"]].astype(keys).sort_values("ts", kind="stable")
    right = clicks.astype(keys).sort_values("ts", kind="stable")
    matched = pd.merge_asof(left, right, on="ts", by=["_user", "_item"], direction="backward",
                            tolerance=int(attribution_window_days * SECONDS_PER_DAY), allow_exact_matches=True)
    matched = matched.loc[matched["request_id"].notna(), _KEY]
    return matched.reset_index(drop=True)
