"""``python -m ltr.logs validate LOGS``, ``import FLAT --out LOGS ...`` and ``partition LOGS --out PLOGS``.

``validate`` checks a log directory against the contract and prints its tables, calendar days,
attribute coverage, join report and funnel. ``import`` turns a one-row-per-exposure export
(Parquet or CSV) into a contract log directory through :func:`ltr.logs.from_interactions`,
prints what it mapped, derived and dropped, then validates what it wrote. ``partition`` writes
a log directory in the hive-partitioned layout the Dask engine reads (``ltr/logs/_partitioned.py``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ltr._cli import add_ts_unit, add_tz, command, parser
from ltr.distributed import EngineOptions, add_engine_options, dask_client, engine_options, open_logs
from ltr.logs._contract import Logs, LogValidationError
from ltr.logs._interactions import from_interactions
from ltr.logs._join import join_samples
from ltr.logs._partitioned import write_partitioned
from ltr.logs._read import read_logs, read_table, write_logs
from ltr.logs._summary import validation_text
from ltr.logs._time import unit_name


def _add_validate(sub: argparse._SubParsersAction) -> None:
    val = sub.add_parser("validate", help="check a log directory against the contract and print the join report")
    val.add_argument("logs", help="log directory")
    add_tz(val)
    add_ts_unit(val)
    val.add_argument("--attribution-window-days", type=float, default=7.0,
                     help="orders without request_id are attributed to the user's latest click on the item "
                          "within this window")
    add_engine_options(val)


def _add_import(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser("import", help="turn a one-row-per-exposure export into a contract log directory")
    imp.add_argument("flat", help="flat file (.parquet or .csv), one row per exposure")
    imp.add_argument("--out", required=True, help="log directory to write")
    for name, what in (("user", "user id"), ("item", "item id"), ("ts", "timestamp"), ("click", "0/1 click label")):
        imp.add_argument(f"--{name}-col", required=True, help=f"flat column of the {what}")
    add_ts_unit(imp)
    for name, what in (("order", "0/1 order label (rows become orders)"), ("bucket", "A/B arm of the request"),
                       ("score", "online ranker score (a candidates table with rank_score)"),
                       ("position", "logged position (default: order in time within the request)")):
        imp.add_argument(f"--{name}-col", default=None, help=f"flat column of the {what}")
    imp.add_argument("--context-col", nargs="+", action="extend", default=[], metavar="C",
                     help="request context kept on requests (constant within a request), e.g. tab")
    imp.add_argument("--request-by", nargs="+", action="extend", default=[], metavar="C",
                     help="columns whose change starts a new request, e.g. tab")
    imp.add_argument("--outcome-col", nargs="+", action="extend", default=[], metavar="C",
                     help="outcomes of the exposure (watch time, likes) kept in the outcomes table, never features")
    imp.add_argument("--gap", type=float, default=1800.0,
                     help="a new request starts after a silence longer than this many seconds (default 1800)")
    imp.add_argument("--items", default=None, help="item attributes file (.parquet or .csv)")
    imp.add_argument("--item-key", default=None, help="id column of --items (default: --item-col)")
    imp.add_argument("--category-col", default=None,
                     help="column of --items used as the category (default: category)")
    imp.add_argument("--users", default=None, help="user attributes file (.parquet or .csv)")
    imp.add_argument("--user-key", default=None, help="id column of --users (default: --user-col)")
    imp.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="format of the tables written")
    add_tz(imp)


def _add_partition(sub: argparse._SubParsersAction) -> None:
    part = sub.add_parser("partition", help="write a log directory as hive-partitioned Parquet "
                          "(<table>/day=YYYY-MM-DD/part-NNNNN.parquet), the layout the Dask engine reads")
    part.add_argument("logs", help="log directory (files or partitioned tables)")
    part.add_argument("--out", required=True, help="directory to write (replaced only when the write succeeds)")
    part.add_argument("--parts-per-day", type=int, default=1,
                      help="files per day and table; requests are spread over them by a hash of request_id (default 1)")
    add_tz(part)
    add_ts_unit(part)


def _partition(args: argparse.Namespace) -> int:
    logs = read_logs(args.logs, tz=args.tz, ts_unit=args.ts_unit)
    written = write_partitioned(logs, args.out, parts_per_day=args.parts_per_day)
    print(f"wrote {args.out}: days in {args.tz}, rows keyed by a request in the partition of their request")
    for name, files in written.items():
        print(f"  {name:<11} {len(getattr(logs, name)):>10,d} rows in {files:,d} file(s)")
    return 0


def _validate_on_dask(args: argparse.Namespace, options: EngineOptions) -> int:
    """Every partition checked and joined on the cluster; the rows and the join report, which add up."""
    with dask_client(options) as client:
        logs = open_logs(client, args.logs, tz=args.tz, ts_unit=args.ts_unit,
                         attribution_window_days=args.attribution_window_days)
    lines = [f"logs OK: {args.logs} ({len(logs.keys):,d} partitions checked on the Dask cluster)"]
    lines += [f"  {name:<11} {rows:>10,d} rows" for name, rows in logs.rows.items()]
    lines += [f"  {name:<11} {len(frame):>10,d} rows" for name, frame in (("items", logs.items), ("users", logs.users))
              if frame is not None]
    print("\n".join([*lines, "", logs.report.to_text()]))
    return 0


def _validate(args: argparse.Namespace) -> int:
    options = engine_options(args)
    if options.is_dask:
        return _validate_on_dask(args, options)
    logs = read_logs(args.logs, tz=args.tz, ts_unit=args.ts_unit)
    result = join_samples(logs, attribution_window_days=args.attribution_window_days)
    print(validation_text(logs, args.logs, result))
    return 0


def _read_file(path: str, name: str) -> pd.DataFrame:
    file = Path(path)
    if not file.is_file():
        raise LogValidationError(name, None, f"file {path!r} does not exist.")
    return read_table(file, name)


def _read_optional(path: str | None, name: str) -> pd.DataFrame | None:
    return None if path is None else _read_file(path, name)


def _import_text(args: argparse.Namespace, flat: pd.DataFrame, logs: Logs) -> str:
    """What the import mapped, derived and dropped."""
    mapped = [f"user_id <- {args.user_col}", f"item_id <- {args.item_col}",
              f"ts <- {args.ts_col} (epoch {unit_name(args.ts_unit)} -> seconds)",
              f"clicks <- rows with {args.click_col} = 1"]
    for option, target in (("order_col", "orders <- rows with {} = 1"), ("bucket_col", "requests.bucket <- {}"),
                           ("score_col", "candidates.rank_score <- {}"), ("position_col", "exposures.position <- {}")):
        if getattr(args, option) is not None:
            mapped.append(target.format(getattr(args, option)))
    mapped += [f"requests.{c} <- {c}" for c in args.context_col]
    mapped += [f"outcomes.{c} <- {c}" for c in args.outcome_col]
    split = " and ".join(["user", *args.request_by])
    derived = [f"{len(logs.requests):,d} requests: rows of one {split}, at most {args.gap:g} s apart",
               "exposures.position: " + ("from " + args.position_col if args.position_col else "order in time")]
    named = {args.user_col, args.item_col, args.ts_col, args.click_col, args.order_col, args.bucket_col,
             args.score_col, args.position_col, *args.context_col, *args.request_by, *args.outcome_col}
    dropped = [str(c) for c in flat.columns if c not in named]
    lines = [f"imported {args.flat}: {len(flat):,d} rows, {len(flat.columns)} columns",
             "  mapped:  " + "; ".join(mapped), "  derived: " + "; ".join(derived)]
    for name, path, key in (("items", args.items, args.item_key or args.item_col),
                            ("users", args.users, args.user_key or args.user_col)):
        table = getattr(logs, name)
        if table is not None:
            category = f", category <- {args.category_col or 'category'}" if name == "items" else ""
            lines.append(f"  {name}:   {len(table):,d} rows from {path} ({name[:-1]}_id <- {key}{category}; "
                         "every column kept)")
    lines.append(f"  dropped: {len(dropped)} column(s) no option names: {', '.join(dropped) or '-'}")
    if dropped:
        lines.append("           (outcomes of an exposure are never features; keep one with --outcome-col, "
                     "request context with --context-col)")
    return "\n".join(lines)


def _import(args: argparse.Namespace) -> int:
    flat = _read_file(args.flat, "interactions")
    logs = from_interactions(
        flat, gap_seconds=args.gap, user_col=args.user_col, item_col=args.item_col, ts_col=args.ts_col,
        ts_unit=args.ts_unit, click_col=args.click_col, order_col=args.order_col, bucket_col=args.bucket_col,
        score_col=args.score_col, position_col=args.position_col, context_cols=args.context_col,
        request_by=args.request_by, outcome_cols=args.outcome_col, category_col=args.category_col,
        items=_read_optional(args.items, "items"), item_key=args.item_key, users=_read_optional(args.users, "users"),
        user_key=args.user_key, tz=args.tz,
    )
    print(_import_text(args, flat, logs))
    write_logs(logs, args.out, fmt=args.format)
    print(f"wrote {args.out} ({args.format})")
    print()
    written = read_logs(args.out, tz=args.tz)
    print(validation_text(written, args.out, join_samples(written)))
    return 0


@command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 bad logs, 2 usage error)."""
    cli = parser("ltr.logs", "Log contract tools.")
    sub = cli.add_subparsers(dest="command", required=True)
    _add_validate(sub)
    _add_import(sub)
    _add_partition(sub)
    args = cli.parse_args(argv)
    if args.command == "validate":
        return _validate(args)
    if args.command == "partition":
        return _partition(args)
    return _import(args)


if __name__ == "__main__":
    sys.exit(main())
