"""The log contract: read, normalise and validate production logs.

A log directory holds one file per table, Parquet (``.parquet``) or CSV (``.csv``), named
after the table (``requests.parquet``, ``clicks.csv`` ...). ``requests``, ``exposures`` and
``clicks`` are required; ``candidates``, ``orders``, ``items`` and ``users`` are optional.
Extra columns are kept. Timestamps are normalised to int64 epoch seconds.

Every problem raises :class:`LogValidationError`, which names the table, the column and an
example offending row. ``python -m ltr.logs validate LOGS`` runs the checks and prints the
join report and the per-bucket funnel; it exits 1 with a one-paragraph message on bad logs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "TABLE_SPECS",
    "LogValidationError",
    "Logs",
    "TableSpec",
    "from_frames",
    "from_interactions",
    "read_logs",
    "write_logs",
]


class LogValidationError(ValueError):
    """Bad input logs. ``table``, ``column`` and ``example`` locate the problem."""

    def __init__(self, table: str, column: str | None, problem: str, example: dict | None = None):
        self.table = table
        self.column = column
        self.problem = problem
        self.example = example
        where = f"logs table '{table}'" + (f", column '{column}'" if column else "")
        text = f"{where}: {problem}"
        if example is not None:
            text += f" Example row: {example}"
        super().__init__(text)


@dataclass(frozen=True)
class TableSpec:
    """Contract of one log table."""

    name: str
    required: bool
    columns: tuple[str, ...]
    id_columns: tuple[str, ...]
    ts_columns: tuple[str, ...] = ()


TABLE_SPECS: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec("requests", True, ("request_id", "ts", "user_id"), ("request_id", "user_id"), ("ts",)),
        TableSpec("exposures", True, ("request_id", "item_id", "ts", "position"), ("request_id", "item_id"), ("ts",)),
        TableSpec("clicks", True, ("request_id", "item_id", "ts"), ("request_id", "item_id"), ("ts",)),
        TableSpec("candidates", False, ("request_id", "item_id"), ("request_id", "item_id")),
        # orders need request_id or user_id; checked separately.
        TableSpec("orders", False, ("item_id", "ts"), ("item_id",), ("ts",)),
        TableSpec("items", False, ("item_id", "category"), ("item_id",)),
        TableSpec("users", False, ("user_id",), ("user_id",)),
    ]
}


@dataclass(frozen=True)
class Logs:
    """Validated, normalised log tables (pandas DataFrames; optional tables may be None).

    Build one with :func:`read_logs` (from a directory) or :func:`from_frames` (in memory);
    both validate. ``tz`` is the time zone in which calendar days are counted.
    """

    requests: pd.DataFrame
    exposures: pd.DataFrame
    clicks: pd.DataFrame
    candidates: pd.DataFrame | None = None
    orders: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    tz: str = "UTC"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The present tables by name."""
        return {name: getattr(self, name) for name in TABLE_SPECS if getattr(self, name) is not None}

    def replace(self, **tables: pd.DataFrame | None) -> Logs:
        """A copy with some tables replaced (not re-validated)."""
        return dataclasses.replace(self, **tables)


# ----------------------------------------------------------------------------- reading


def _find_table_file(root: Path, name: str) -> Path | None:
    found = [root / f"{name}{ext}" for ext in (".parquet", ".csv") if (root / f"{name}{ext}").exists()]
    if len(found) > 1:
        raise LogValidationError(name, None, f"both {found[0].name} and {found[1].name} exist; keep one.")
    return found[0] if found else None


def _read_table(path: Path, name: str) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:
        raise LogValidationError(name, None, f"cannot read {path}: {exc}") from None


def read_logs(path: str | Path, tz: str = "UTC", validate: bool = True) -> Logs:
    """Read a log directory per the contract and validate it.

    Parameters
    ----------
    path : str or Path
        Directory with ``requests``, ``exposures``, ``clicks`` and optional ``candidates``,
        ``orders``, ``items``, ``users`` tables as ``.parquet`` or ``.csv`` files.
    tz : str, default "UTC"
        Time zone in which calendar days are counted.
    validate : bool, default True
        Run every contract check (:func:`from_frames`).

    Returns
    -------
    Logs

    Raises
    ------
    LogValidationError
        Missing directory, table or column, wrong dtype, NaN id, unknown request, ...
    """
    root = Path(path)
    if not root.is_dir():
        raise LogValidationError("*", None, f"log directory {str(root)!r} does not exist or is not a directory.")
    frames = {}
    for name in TABLE_SPECS:
        file = _find_table_file(root, name)
        if file is not None:
            frames[name] = _read_table(file, name)
    for name, spec in TABLE_SPECS.items():
        if spec.required and name not in frames:
            raise LogValidationError(
                name, None, f"required table is missing: expected {name}.parquet or {name}.csv in {root}."
            )
    return from_frames(**frames, tz=tz, validate=validate)


def write_logs(logs: Logs, path: str | Path, fmt: str = "parquet") -> None:
    """Write every present table of ``logs`` to ``path`` as Parquet (default) or CSV."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv'. Got {fmt!r} instead.")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    for name, frame in logs.tables().items():
        if fmt == "parquet":
            frame.to_parquet(root / f"{name}.parquet", index=False, compression="zstd")
        else:
            frame.to_csv(root / f"{name}.csv", index=False)


# ----------------------------------------------------------------------------- checks


def _example(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> dict:
    idx = int(np.flatnonzero(np.asarray(mask))[0])
    out: dict = {"row": idx}
    for col in frame.columns:
        # Column by column, so an int id is not shown as a float because of its neighbours.
        val = frame[col].iloc[idx]
        out[str(col)] = val.item() if hasattr(val, "item") else val
    return out


def _check_columns(frame: pd.DataFrame, spec: TableSpec) -> None:
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise LogValidationError(
            spec.name, missing[0],
            f"required column is missing (has columns {list(map(str, frame.columns))}).",
        )
    # An empty orders table is a normal day without conversions; any other empty table is a mistake.
    if len(frame) == 0 and spec.name != "orders":
        raise LogValidationError(spec.name, None, "table is empty.")


def _check_id(frame: pd.DataFrame, table: str, column: str) -> pd.Series:
    col = frame[column].infer_objects()
    null = col.isna().to_numpy()
    if null.any():
        raise LogValidationError(table, column, f"{int(null.sum())} row(s) have a missing (NaN) id.", _example(frame, null))
    if pd.api.types.is_bool_dtype(col):
        raise LogValidationError(table, column, "ids must be integers or strings, got booleans.", _example(frame, np.ones(len(col), bool)))
    if pd.api.types.is_float_dtype(col):
        values = col.to_numpy()
        frac = values != np.round(values)
        if frac.any():
            raise LogValidationError(table, column, "ids must be integers or strings, got non-integral floats.", _example(frame, frac))
        raise LogValidationError(
            table, column,
            "ids must be integers or strings, got floats (a CSV id column with blanks reads as float; fix the blanks).",
            _example(frame, np.ones(len(col), bool)),
        )
    if pd.api.types.is_integer_dtype(col):
        return col.astype(np.int64)
    if pd.api.types.is_string_dtype(col) or col.dtype == object:
        is_str = col.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        if is_str.all():
            return col.astype(str)
        is_int = col.map(lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)).to_numpy(dtype=bool)
        if is_int.all():
            return col.astype(np.int64)
        bad = ~is_str if is_str.any() else ~is_int
        if bad.any():
            raise LogValidationError(table, column, "ids must all be integers or all be strings; found mixed types.", _example(frame, bad))
        return col.astype(str)
    raise LogValidationError(table, column, f"ids must be integers or strings, got dtype {col.dtype}.", _example(frame, np.ones(len(col), bool)))


def _datetime_to_seconds(col: pd.Series) -> pd.Series:
    # Works for any datetime resolution (ns, us, s): floor-divide a Timedelta.
    return ((col.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype(np.int64)


def _check_optional_id(frame: pd.DataFrame, table: str, column: str) -> pd.Series:
    present = frame[column].notna().to_numpy()
    if present.all():
        return _check_id(frame, table, column)
    sub = frame.loc[present]
    col = sub[column]
    if pd.api.types.is_float_dtype(col):
        # Parquet/CSV turn an int column with blanks into floats; accept integral values.
        frac = (col != np.round(col)).to_numpy()
        if frac.any():
            raise LogValidationError(table, column, "ids must be integers or strings, got non-integral floats.", _example(sub, frac))
        return frame[column].astype("Int64")
    checked = _check_id(sub, table, column)
    if pd.api.types.is_integer_dtype(checked):
        return frame[column].astype("Int64")
    return frame[column].astype(object).where(present, None)


_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"


def _text_to_seconds(frame: pd.DataFrame, table: str, column: str) -> pd.Series:
    """Text timestamps (CSV): all epoch numbers, or all ISO 8601 strings with an offset."""
    text = frame[column].astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all():
        return pd.Series(np.floor(numeric.to_numpy(dtype=np.float64)).astype(np.int64), index=frame.index)
    has_offset = text.str.contains(_TZ_SUFFIX, regex=True).to_numpy()
    parsed = pd.to_datetime(text.where(has_offset), errors="coerce", utc=True, format="ISO8601")
    bad = (parsed.isna() & numeric.isna()).to_numpy()
    if not bad.any():
        bad = parsed.isna().to_numpy()
    if bad.any():
        raise LogValidationError(
            table, column,
            "timestamps must be numeric epoch seconds or timezone-aware datetimes "
            "(ISO strings need an offset such as +00:00; numbers and dates cannot be mixed).",
            _example(frame, bad),
        )
    return _datetime_to_seconds(parsed)


def _to_epoch_seconds(frame: pd.DataFrame, table: str, column: str) -> pd.Series:
    col = frame[column].infer_objects()
    if pd.api.types.is_datetime64_any_dtype(col):
        if getattr(col.dt, "tz", None) is None:
            raise LogValidationError(
                table, column,
                "timestamps are naive datetimes; use epoch seconds or timezone-aware datetimes.",
                _example(frame, np.ones(len(col), bool)),
            )
        null = col.isna().to_numpy()
        if null.any():
            raise LogValidationError(table, column, "missing timestamps.", _example(frame, null))
        return _datetime_to_seconds(col)
    if pd.api.types.is_bool_dtype(col):
        raise LogValidationError(table, column, "timestamps must be numeric epoch seconds or datetimes, got booleans.", _example(frame, np.ones(len(col), bool)))
    if pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise LogValidationError(table, column, "missing or non-finite timestamps.", _example(frame, bad))
        return pd.Series(np.floor(values).astype(np.int64), index=frame.index)
    if pd.api.types.is_string_dtype(col) or col.dtype == object:
        return _text_to_seconds(frame, table, column)
    raise LogValidationError(table, column, f"timestamps must be numeric or datetime, got dtype {col.dtype}.", _example(frame, np.ones(len(col), bool)))


def _check_positive_int(frame: pd.DataFrame, table: str, column: str, minimum: int) -> pd.Series:
    col = frame[column]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise LogValidationError(table, column, f"must be integers >= {minimum}, got dtype {col.dtype}.", _example(frame, np.ones(len(col), bool)))
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < minimum)
    if bad.any():
        raise LogValidationError(table, column, f"{int(bad.sum())} row(s) are not integers >= {minimum}.", _example(frame, bad))
    return pd.Series(values.astype(np.int64), index=frame.index)


def _check_finite(frame: pd.DataFrame, table: str, column: str) -> None:
    col = frame[column]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise LogValidationError(table, column, f"must be numeric, got dtype {col.dtype}.", _example(frame, np.ones(len(col), bool)))
    bad = ~np.isfinite(col.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        raise LogValidationError(table, column, f"{int(bad.sum())} row(s) are missing or not finite.", _example(frame, bad))


def _check_unique(frame: pd.DataFrame, table: str, columns: list[str]) -> None:
    dup = frame.duplicated(columns, keep="first").to_numpy()
    if dup.any():
        what = " x ".join(columns)
        raise LogValidationError(table, columns[-1], f"{int(dup.sum())} duplicate {what} row(s).", _example(frame, dup))


def _check_known(frame: pd.DataFrame, table: str, column: str, known: pd.Series, known_table: str) -> None:
    unknown = ~frame[column].isin(known).to_numpy()
    if unknown.any():
        raise LogValidationError(
            table, column,
            f"{int(unknown.sum())} row(s) reference a {column} not in table '{known_table}'.",
            _example(frame, unknown),
        )


def _check_same_id_type(frames: dict[str, pd.DataFrame], column: str) -> None:
    kinds = {name: ("int" if pd.api.types.is_integer_dtype(f[column]) else "str")
             for name, f in frames.items() if column in f.columns and f[column].notna().any()}
    if len(set(kinds.values())) > 1:
        table = next(n for n, k in kinds.items() if k != next(iter(kinds.values())))
        raise LogValidationError(table, column, f"id types differ between tables: {kinds}.")


def from_frames(
    requests: pd.DataFrame,
    exposures: pd.DataFrame,
    clicks: pd.DataFrame,
    candidates: pd.DataFrame | None = None,
    orders: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    tz: str = "UTC",
    validate: bool = True,
) -> Logs:
    """Normalise and validate in-memory tables into :class:`Logs`.

    Normalisation: ids become int64 or str, timestamps int64 epoch seconds, positions
    int64. The input frames are not modified.

    Raises
    ------
    LogValidationError
        On the first contract violation, naming table, column and an example row.
    """
    given = {"requests": requests, "exposures": exposures, "clicks": clicks, "candidates": candidates,
             "orders": orders, "items": items, "users": users}
    frames: dict[str, pd.DataFrame] = {}
    for name, frame in given.items():
        if frame is None:
            continue
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame. Got {type(frame).__name__} instead.")
        frames[name] = frame.reset_index(drop=True).copy()
    if not validate:
        return Logs(**frames, tz=tz)

    for name, frame in frames.items():
        spec = TABLE_SPECS[name]
        _check_columns(frame, spec)
        id_cols = list(spec.id_columns)
        if name == "orders":
            if "request_id" not in frame.columns and "user_id" not in frame.columns:
                raise LogValidationError("orders", "request_id", "orders need a request_id or a user_id column.")
            for col in ("request_id", "user_id"):
                if col in frame.columns:
                    # Either key may be missing on a row, but not both (checked below).
                    frame[col] = _check_optional_id(frame, name, col)
            no_key = np.ones(len(frame), bool)
            for col in ("request_id", "user_id"):
                if col in frame.columns:
                    no_key &= frame[col].isna().to_numpy()
            if no_key.any():
                raise LogValidationError("orders", "request_id", "orders with neither request_id nor user_id.", _example(frame, no_key))
        for col in id_cols:
            frame[col] = _check_id(frame, name, col)
        for col in spec.ts_columns:
            frame[col] = _to_epoch_seconds(frame, name, col)

    for column in ("request_id", "user_id", "item_id"):
        _check_same_id_type(frames, column)

    req = frames["requests"]
    _check_unique(req, "requests", ["request_id"])
    if "bucket" in req.columns:
        null = req["bucket"].isna().to_numpy()
        if null.any():
            raise LogValidationError("requests", "bucket", f"{int(null.sum())} request(s) have no bucket.", _example(req, null))
        req["bucket"] = req["bucket"].astype(str)

    exp = frames["exposures"]
    exp["position"] = _check_positive_int(exp, "exposures", "position", 0)
    _check_known(exp, "exposures", "request_id", req["request_id"], "requests")
    _check_known(frames["clicks"], "clicks", "request_id", req["request_id"], "requests")

    if "candidates" in frames:
        cand = frames["candidates"]
        _check_known(cand, "candidates", "request_id", req["request_id"], "requests")
        _check_unique(cand, "candidates", ["request_id", "item_id"])
        if "rank_pos" in cand.columns:
            cand["rank_pos"] = _check_positive_int(cand, "candidates", "rank_pos", 1)
        if "rank_score" in cand.columns:
            _check_finite(cand, "candidates", "rank_score")
    if "orders" in frames and "request_id" in frames["orders"].columns:
        ords = frames["orders"]
        has = ords["request_id"].notna().to_numpy()
        unknown = has & ~ords["request_id"].isin(req["request_id"]).to_numpy()
        if unknown.any():
            raise LogValidationError("orders", "request_id", f"{int(unknown.sum())} row(s) reference a request_id not in table 'requests'.", _example(ords, unknown))
    if "items" in frames:
        _check_unique(frames["items"], "items", ["item_id"])
        null = frames["items"]["category"].isna().to_numpy()
        if null.any():
            raise LogValidationError("items", "category", f"{int(null.sum())} item(s) have no category.", _example(frames["items"], null))
        if "embedding" in frames["items"].columns:
            _check_embedding(frames["items"])
    if "users" in frames:
        _check_unique(frames["users"], "users", ["user_id"])

    _check_clicks_after_exposure(exp, frames["clicks"])
    return Logs(**frames, tz=tz)


def _check_embedding(items: pd.DataFrame) -> None:
    emb = items["embedding"]
    lengths = emb.map(lambda v: -1 if v is None or (isinstance(v, float) and np.isnan(v)) else len(v)).to_numpy()
    if (lengths < 0).any():
        raise LogValidationError("items", "embedding", "missing embeddings.", _example(items, lengths < 0))
    if (lengths != lengths[0]).any():
        raise LogValidationError("items", "embedding", f"embeddings of different lengths (first has {lengths[0]}).",
                                 _example(items, lengths != lengths[0]))


def _check_clicks_after_exposure(exposures: pd.DataFrame, clicks: pd.DataFrame) -> None:
    first_seen = exposures.groupby(["request_id", "item_id"], sort=False)["ts"].min().rename("exposure_ts")
    joined = clicks.join(first_seen, on=["request_id", "item_id"], how="left")
    early = (joined["ts"] < joined["exposure_ts"]).to_numpy()
    if early.any():
        raise LogValidationError(
            "clicks", "ts", f"{int(early.sum())} click(s) happen before their exposure.", _example(joined, early)
        )


# ----------------------------------------------------------------------------- importer


def from_interactions(
    frame: pd.DataFrame,
    *,
    gap_seconds: int = 1800,
    user_col: str = "user_id",
    item_col: str = "item_id",
    ts_col: str = "ts",
    click_col: str = "click",
    order_col: str | None = "order",
    category_col: str | None = "category",
    bucket_col: str | None = "bucket",
    score_col: str | None = "score",
    position_col: str | None = None,
    tz: str = "UTC",
) -> Logs:
    """Convert one-row-per-exposure interaction data into the contract's tables.

    Rows of one user are grouped into a request while consecutive rows are at most
    ``gap_seconds`` apart. Within a request, positions follow ``position_col`` when given,
    else the timestamp order (ties broken by input order).

    Parameters
    ----------
    frame : DataFrame
        One row per exposure with user, item, timestamp and a 0/1 click column; optional
        order, category, bucket and score columns (absent names are skipped).
    gap_seconds : int, default 1800
        A new request starts after a silence longer than this.

    Returns
    -------
    Logs
        requests (with ``bucket`` when given), exposures, clicks, orders (when ``order_col``
        exists), items (when ``category_col`` exists) and candidates with ``rank_score`` (when
        ``score_col`` exists), validated.
    """
    if not isinstance(gap_seconds, (int, np.integer)) or gap_seconds < 0:
        raise ValueError(f"gap_seconds must be an int >= 0. Got {gap_seconds!r} instead.")
    for col in (user_col, item_col, ts_col, click_col):
        if col not in frame.columns:
            raise LogValidationError("interactions", col, f"required column is missing (has columns {list(frame.columns)}).")
    df = frame.reset_index(drop=True).copy()
    df["_ts"] = _to_epoch_seconds(df, "interactions", ts_col)
    df["_order_in_input"] = np.arange(len(df))
    df = df.sort_values([user_col, "_ts", "_order_in_input"], kind="stable").reset_index(drop=True)
    user_change = df[user_col].ne(df[user_col].shift()).to_numpy()
    gap = df["_ts"].diff().to_numpy() > gap_seconds
    request_id = np.cumsum(user_change | gap) - 1
    df["request_id"] = request_id.astype(np.int64)

    if position_col is not None:
        df["position"] = df[position_col].to_numpy()
    else:
        df["position"] = df.groupby("request_id", sort=False).cumcount().to_numpy() + 1

    head = df.groupby("request_id", sort=True).head(1)
    requests = pd.DataFrame({"request_id": head["request_id"].to_numpy(), "ts": head["_ts"].to_numpy(),
                             "user_id": head[user_col].to_numpy()})
    if bucket_col is not None and bucket_col in df.columns:
        per_request = df.groupby("request_id", sort=True)[bucket_col].nunique()
        if (per_request > 1).any():
            rid = per_request.index[per_request.to_numpy() > 1][0]
            raise LogValidationError("interactions", bucket_col, "bucket changes within one request.",
                                     _example(df, (df["request_id"] == rid).to_numpy()))
        requests["bucket"] = head[bucket_col].astype(str).to_numpy()
    exposures = pd.DataFrame({"request_id": df["request_id"], "item_id": df[item_col], "ts": df["_ts"],
                              "position": df["position"]})
    clicked = df[click_col].astype(bool).to_numpy()
    clicks = pd.DataFrame({"request_id": df["request_id"][clicked], "item_id": df[item_col][clicked],
                           "ts": df["_ts"][clicked]})
    orders = None
    if order_col is not None and order_col in df.columns:
        ordered = df[order_col].astype(bool).to_numpy()
        orders = pd.DataFrame({"request_id": df["request_id"][ordered], "user_id": df[user_col][ordered],
                               "item_id": df[item_col][ordered], "ts": df["_ts"][ordered]})
    items = None
    if category_col is not None and category_col in df.columns:
        items = df.drop_duplicates(item_col)[[item_col, category_col]].rename(
            columns={item_col: "item_id", category_col: "category"})
    candidates = None
    if score_col is not None and score_col in df.columns:
        candidates = pd.DataFrame({"request_id": df["request_id"], "item_id": df[item_col],
                                   "rank_score": df[score_col].astype(float)})
        candidates = candidates.drop_duplicates(["request_id", "item_id"])
        candidates["rank_pos"] = candidates.groupby("request_id")["rank_score"].rank(
            ascending=False, method="first").astype(np.int64)
    return from_frames(requests=requests, exposures=exposures, clicks=clicks, candidates=candidates,
                       orders=orders, items=items, tz=tz)
