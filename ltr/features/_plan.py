"""Which feature families and columns a builder uses, decided once at ``fit``.

:func:`plan_features` turns the builder's parameters and what the training data offers
(frame columns, item and user attribute tables) into a :class:`FeaturePlan`: the key
families to count, the categorical columns by source (frame context, item attributes,
user attributes), the attributes needed as counting keys and the frame columns read.

Context columns (request context such as ``tab`` or ``device``) are categorical features by
default, like the item and user attributes. :func:`plan_for_samples` keeps every such
automatically chosen categorical with at most ``max_levels`` distinct values in the training
rows and reports the others in ``skipped_categorical`` (free text, timestamps, and attributes
nearly unique per user such as follower counts, which a one-hot model turns into user ids and
overfits). Ids, times, labels and the online ranker's own outputs are never context features,
and the A/B ``bucket`` is never a feature at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ltr.features._attributes import AttributeTable
from ltr.logs import Logs

__all__ = [
    "CONTEXT",
    "DERIVED_CATEGORICAL",
    "FORBIDDEN",
    "ID_COLUMNS",
    "ITEM_SIDE",
    "KEY_FAMILIES",
    "NOT_CONTEXT",
    "REQUIRED",
    "FeaturePlan",
    "categorical_candidates",
    "context_candidates",
    "count_levels",
    "item_key_columns",
    "level_values",
    "plan_features",
    "plan_for_samples",
    "user_side",
]

KEY_FAMILIES: dict[str, tuple[str, ...]] = {
    "item": ("item_id",),
    "user": ("user_id",),
    "user_category": ("user_id", "item_category"),
    "item_position": ("item_id", "position"),
    "category": ("item_category",),
    "user_item": ("user_id", "item_id"),
}
#: Id columns of every frame, categorical features when ``ids`` is on (with the item key
#: attributes, see :func:`item_key_columns`).
ID_COLUMNS = ("user_id", "item_id")
#: Key columns that describe the item (a family without any is user-side).
ITEM_SIDE = ("item_id", "position")
#: Context columns offered when the builder's ``context`` is None, when present in the samples
#: (``ltr.train`` offers every column of the requests table instead).
CONTEXT = ("device", "recall_source")
#: Categorical features derived from every frame, offered unless excluded.
DERIVED_CATEGORICAL = ("hour", "position")
#: Never a feature: the A/B bucket is assigned per user, so a model that saw it would learn
#: the arm rather than the user.
FORBIDDEN = ("bucket",)
#: Never context features: ids, times, labels, and the online ranker's outputs (a model that
#: read them would learn the old ranker, and they do not exist when the new one serves).
NOT_CONTEXT = ("request_id", "user_id", "item_id", "ts", "day", "request_ts", "click", "order", "rank_pos",
               "rank_score")
#: Columns every frame must have.
REQUIRED = ("user_id", "item_id", "ts")
# Columns every prepared frame has (derived from the required ones when absent).
_DERIVED = frozenset({"hour", "position", "user_id", "item_id", "ts", "day"})


@dataclass(frozen=True)
class FeaturePlan:
    """The families and columns of a fitted builder.

    Parameters
    ----------
    families : mapping of str -> tuple of str
        Key columns of each counting family, in output order.
    context, item, user : tuple of str
        Categorical features by source: frame columns (incl. hour and position), item
        attributes (``item_<attr>``), user attributes (``user_<attr>``).
    key_attributes : tuple of str
        ``item_<attr>``/``user_<attr>`` columns used as counting keys.
    input_columns : tuple of str
        Frame columns read beyond user_id, item_id, ts (day, position): context and key
        columns.
    skipped_categorical : mapping of str -> int, default {}
        Automatically chosen categorical features left out for having too many distinct
        values, with their count in the training rows.
    ids : tuple of str, default ()
        Id-level categorical features: ``user_id``, ``item_id`` and item key attributes
        (``item_<key>``), encoded with their own minimum count.
    item_keys : tuple of str, default ()
        Item key attributes (``item_<key>``, author-like ids of the items table): counting
        keys of their own and crossed with the user; not numeric features.
    frozen : tuple of str, default ()
        Families whose statistics stop at the end of the training window (refreshed with the
        model, not daily).
    """

    families: Mapping[str, tuple[str, ...]]
    context: tuple[str, ...]
    item: tuple[str, ...]
    user: tuple[str, ...]
    key_attributes: tuple[str, ...]
    input_columns: tuple[str, ...]
    skipped_categorical: Mapping[str, int] = field(default_factory=dict)
    ids: tuple[str, ...] = ()
    item_keys: tuple[str, ...] = ()
    frozen: tuple[str, ...] = ()

    @property
    def categorical(self) -> tuple[str, ...]:
        """Every categorical feature: context, item, user, ids."""
        return self.context + self.item + self.user + self.ids

    @property
    def key_columns(self) -> frozenset[str]:
        """Columns of any counting key."""
        return frozenset(c for columns in self.families.values() for c in columns)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able metadata; no arrays."""
        meta = {
            "families": {f: list(c) for f, c in self.families.items()},
            "categorical": {"context": list(self.context), "item": list(self.item), "user": list(self.user)},
            "key_attributes": list(self.key_attributes),
            "input_columns": list(self.input_columns),
            "skipped_categorical": {c: int(n) for c, n in self.skipped_categorical.items()},
            "ids": list(self.ids),
            "item_keys": list(self.item_keys),
            "frozen": list(self.frozen),
        }
        return meta, {}

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> FeaturePlan:
        """Inverse of :meth:`to_state`."""
        groups = meta["categorical"]
        return cls(
            families={f: tuple(c) for f, c in meta["families"].items()},
            context=tuple(groups["context"]),
            item=tuple(groups["item"]),
            user=tuple(groups["user"]),
            key_attributes=tuple(meta["key_attributes"]),
            input_columns=tuple(meta["input_columns"]),
            skipped_categorical={c: int(n) for c, n in meta.get("skipped_categorical", {}).items()},
            ids=tuple(meta.get("ids", ())),
            item_keys=tuple(meta.get("item_keys", ())),
            frozen=tuple(meta.get("frozen", ())),
        )


def context_candidates(samples: pd.DataFrame, logs: Logs) -> tuple[str, ...]:
    """The request context columns of joined samples: what ``ltr.train`` offers as ``context``.

    :func:`ltr.logs.join_samples` puts the exposures' columns first, then the candidates' and
    the requests' (renamed on a clash). The columns that do not come from the exposures table
    describe the request or how the item got there (``tab``, ``device``, ``recall_source``),
    all known before the exposure; the exposures' own extra columns are not offered, since
    they may be outcomes of the exposure. Ids, times, labels, the ranker's outputs and the
    bucket are never offered.

    Parameters
    ----------
    samples : pandas.DataFrame
        ``join_samples(logs).samples`` (or rows of it).
    logs : ltr.logs.Logs
        The logs they were joined from.

    Returns
    -------
    columns : tuple of str
        The requests' columns, then the candidates', each in the samples' column order.
    """
    never = set(logs.exposures.columns) | set(NOT_CONTEXT) | set(FORBIDDEN)
    # Outcomes of the exposure (attached as outcome_<name> columns) are labels, never context.
    offered = [str(c) for c in samples.columns if c not in never and not str(c).startswith("outcome_")]
    candidates = set(logs.candidates.columns) if logs.candidates is not None else set()
    from_candidates = [c for c in offered if c in candidates or c.removeprefix("candidate_") in candidates]
    return tuple([c for c in offered if c not in from_candidates] + from_candidates)


def level_values(
    samples: pd.DataFrame, names: Sequence[str], items: AttributeTable | None, users: AttributeTable | None
) -> dict[str, np.ndarray]:
    """Distinct non-missing values of each categorical candidate over the rows of ``samples``.

    Parameters
    ----------
    samples : pandas.DataFrame
        The training samples (or one partition of them: the values of disjoint partitions
        unite into those of all rows).
    names : sequence of str
        Columns of ``samples``, or ``item_<attr>``/``user_<attr>`` attributes of the rows'
        items and users.
    items, users : AttributeTable or None
        The attribute tables.

    Returns
    -------
    values : dict of str -> ndarray
    """
    rows: dict[str, np.ndarray] = {}
    out: dict[str, np.ndarray] = {}
    for name in names:
        source, _, attribute = name.partition("_")
        table = {"item": items, "user": users}.get(source)
        if name not in samples.columns and table is not None and attribute in table.columns:
            if source not in rows:
                rows[source] = table.lookup(samples[f"{source}_id"].to_numpy())
            values = pd.Series(table.take(attribute, rows[source]))
        else:
            values = samples[name]
        out[name] = values.dropna().unique()
    return out


def count_levels(
    samples: pd.DataFrame, names: Sequence[str], items: AttributeTable | None, users: AttributeTable | None
) -> dict[str, int]:
    """Number of distinct non-missing values of each categorical candidate over the training rows.

    Parameters
    ----------
    samples, names, items, users
        As in :func:`level_values`.

    Returns
    -------
    levels : dict of str -> int
    """
    return {name: int(pd.Series(values).nunique(dropna=True))
            for name, values in level_values(samples, names, items, users).items()}


def plan_features(
    *,
    key_families: Sequence[str],
    extra_keys: Sequence[Sequence[str]],
    categorical: Sequence[str] | None,
    frame_columns: Collection[str],
    items: AttributeTable | None,
    users: AttributeTable | None,
    context: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    skipped_categorical: Mapping[str, int] | None = None,
    item_keys: Sequence[str] | None = (),
    ids: bool = False,
    cross_keys: bool = False,
    frozen: Sequence[str] | None = (),
) -> FeaturePlan:
    """Decide the families and columns in use (parameters as in ``FeatureBuilder``).

    Built-in families whose columns are unavailable (e.g. the item category without an
    items table) are left out; an unavailable column in ``extra_keys`` or ``categorical``
    raises ``ValueError``. Without ``categorical`` the categorical features are ``context``
    (default: the :data:`CONTEXT` columns present), hour, position, every string column of
    the items table and every column of the users table, less ``exclude`` and the item keys.

    ``item_keys`` (None: :func:`item_key_columns`) are item attributes acting as ids; with
    ``cross_keys`` each gets a family of its own (``item_<key>``) and one crossed with the
    user (``user_item_<key>``); with ``ids`` they, ``user_id`` and ``item_id`` are id-level
    categorical features. ``frozen`` (None: every family without an item-side column, see
    :func:`user_side`) names the families whose statistics stop at the training end.
    """
    keys = item_key_columns(items) if item_keys is None else tuple(f"item_{k}" for k in item_keys)
    item_attrs = {f"item_{c}" for c in items.columns} if items is not None else set()
    user_attrs = {f"user_{c}" for c in users.columns} if users is not None else set()

    def available(col: str) -> bool:
        return col in _DERIVED or col in item_attrs or col in user_attrs or col in frame_columns

    families = {name: KEY_FAMILIES[name] for name in key_families if all(map(available, KEY_FAMILIES[name]))}
    for key in extra_keys:
        missing = [c for c in key if not available(c)]
        if missing:
            raise ValueError(
                f"extra_keys columns must exist in samples or the attribute tables. Got unknown {missing} "
                f"in {tuple(key)!r} instead."
            )
        families["__".join(key)] = tuple(key)
    unknown = [k for k in keys if k not in item_attrs]
    if unknown:
        raise ValueError(f"item_keys must be columns of the items table. Got {unknown} instead.")
    if cross_keys:
        for key in keys:
            families.setdefault(key, (key,))
            families.setdefault(f"user_{key}", ("user_id", key))
    if categorical is None:
        offered = [c for c in CONTEXT if c in frame_columns] if context is None else list(context)
        cats = offered + list(DERIVED_CATEGORICAL)
        cats += [f"item_{c}" for c in items.string_columns()] if items is not None else []
        cats += [f"user_{c}" for c in users.columns] if users is not None else []
    else:
        cats = list(categorical)
    cats = [c for c in dict.fromkeys(cats) if c not in exclude and c not in keys]
    missing = [c for c in cats if not available(c) or c in ("user_id", "item_id", "ts", "day")]
    if missing:
        raise ValueError(
            "categorical columns must be context columns of samples, hour, position or "
            f"item_/user_ attributes. Got {missing} instead."
        )
    context_cols = tuple(c for c in cats if c not in item_attrs and c not in user_attrs)
    if frozen is None:
        frozen = tuple(f for f, cols in families.items() if user_side(cols, item_attrs))
    stray = [f for f in frozen if f not in families]
    if stray:
        raise ValueError(f"frozen_families must be families in use {list(families)}. Got {stray} instead.")
    key_cols = {c for cols in families.values() for c in cols}
    return FeaturePlan(
        families=families,
        context=context_cols,
        item=tuple(c for c in cats if c in item_attrs),
        user=tuple(c for c in cats if c in user_attrs),
        key_attributes=tuple(sorted(key_cols & (item_attrs | user_attrs))),
        input_columns=tuple(sorted((key_cols | set(context_cols)) - item_attrs - user_attrs - _DERIVED)),
        skipped_categorical=dict(skipped_categorical or {}),
        ids=(ID_COLUMNS + keys) if ids else (),
        item_keys=keys,
        frozen=tuple(frozen),
    )


def item_key_columns(items: AttributeTable | None) -> tuple[str, ...]:
    """Item attributes that are ids of something else (``author_id``): columns named ``*_id``."""
    if items is None:
        return ()
    return tuple(f"item_{c}" for c in items.columns if c.endswith("_id"))


def user_side(columns: Sequence[str], item_attrs: Collection[str]) -> bool:
    """Whether a family's key describes only the user and the request (no item-side column)."""
    return not any(c in ITEM_SIDE or c in item_attrs for c in columns)


def categorical_candidates(columns: Sequence[str], params: Mapping[str, Any], items: AttributeTable | None,
                           users: AttributeTable | None) -> tuple[list[str], list[str]]:
    """The context columns offered and every automatically chosen categorical candidate.

    Parameters
    ----------
    columns : sequence of str
        The training samples' columns.
    params : mapping
        A builder's ``get_params()`` (its ``categorical`` None).
    items, users : AttributeTable or None

    Returns
    -------
    offered : list of str
        Context columns offered (``params["context"]``, default the :data:`CONTEXT` columns present).
    names : list of str
        Candidates whose distinct values :func:`plan_for_samples` counts.
    """
    columns = list(columns)
    offered = params["context"]
    offered = [c for c in CONTEXT if c in columns] if offered is None else list(offered)
    absent = [c for c in offered if c not in columns]
    if absent:
        raise ValueError(
            f"context columns must be columns of samples. Got {absent} instead (samples has "
            f"{sorted(map(str, columns))})."
        )
    names = list(offered)
    names += [f"item_{c}" for c in items.string_columns()] if items is not None else []
    names += [f"user_{c}" for c in users.columns] if users is not None else []
    given = params["item_keys"]
    keys = set(item_key_columns(items) if given is None else (f"item_{k}" for k in given))
    exclude = tuple(params["exclude"])
    return offered, [c for c in dict.fromkeys(names) if c not in exclude and c not in keys]


def plan_for_samples(
    samples: pd.DataFrame, params: Mapping[str, Any], items: AttributeTable | None, users: AttributeTable | None,
    levels: Mapping[str, int] | None = None,
) -> FeaturePlan:
    """The plan of a builder's parameters (``get_params()``) on its training samples.

    Without ``categorical``, the categorical features chosen automatically (the context
    columns offered, default the :data:`CONTEXT` columns present; the items' string
    attributes; the users' attributes), less ``exclude``, are kept when they have at most
    ``max_levels`` distinct values in the training rows (:func:`count_levels`), else skipped
    and recorded in ``skipped_categorical``.

    ``levels`` gives those counts instead (fitting from partitions: the client holds only the
    samples' columns, ``samples.iloc[:0]``, and the union of the partitions' :func:`level_values`).
    """
    exclude = tuple(params["exclude"])
    if params["categorical"] is not None:
        context, skipped = None, {}
    else:
        offered, names = categorical_candidates(samples.columns, params, items, users)
        if levels is None:
            levels = count_levels(samples, names, items, users)
        skipped = {name: int(levels[name]) for name in names if levels[name] > int(params["max_levels"])}
        context = tuple(c for c in offered if c not in skipped)
    return plan_features(
        key_families=params["key_families"],
        extra_keys=params["extra_keys"],
        categorical=params["categorical"],
        frame_columns=samples.columns,
        items=items,
        users=users,
        context=context,
        exclude=exclude + tuple(skipped),
        skipped_categorical=skipped,
        item_keys=params["item_keys"],
        ids=bool(params["ids"]),
        cross_keys=bool(params["cross_keys"]),
        frozen=params["frozen_families"],
    )
