"""Per-sample explanations: which features pushed a score up or down.

``python -m ltr.explain BUNDLE LOGS --request-id R --item-id I [--top 10]`` prints the
largest contributions (logit scale) behind one exposure's score, computed point-in-time from
the logs exactly as ``python -m ltr.score`` scores it. Contributions are weight x value per
active feature for logistic regression and LightGBM ``pred_contrib`` (SHAP) values; with the
bias they sum to the logit of the score.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ltr._cli import add_ts_unit, add_tz, command, parser
from ltr._contributions import top_contributions
from ltr.features import labelled_samples
from ltr.logs import Logs, read_logs
from ltr.serving import Ranker

__all__ = ["explain_sample", "main", "top_contributions"]


def _match_id(column: pd.Series, text: str, name: str) -> Any:
    """Convert a command-line id to the id column's type."""
    if pd.api.types.is_integer_dtype(column.dtype):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name} must be an integer id like the logs'. Got {text!r} instead.") from None
    return str(text)


def explain_sample(bundle: Ranker | str | Path, logs: Logs, request_id: Any, item_id: Any,
                   top: int = 10) -> pd.DataFrame:
    """Explain one exposure of ``logs`` with a bundle, point-in-time.

    Parameters
    ----------
    bundle : path or ltr.serving.Ranker
    logs : ltr.logs.Logs
    request_id, item_id
        The exposure; converted to the logs' id type when given as strings.
    top : int, default 10

    Returns
    -------
    DataFrame
        See :meth:`ltr.serving.Ranker.explain`.

    Raises
    ------
    ValueError
        No exposure with that request_id and item_id.
    """
    ranker = bundle if isinstance(bundle, Ranker) else Ranker.load(bundle)
    # Days in the bundle's time zone and the outcome columns, as ltr.score reads them.
    samples = labelled_samples(logs, ranker.features.tz)
    rid = _match_id(samples["request_id"], str(request_id), "request_id")
    iid = _match_id(samples["item_id"], str(item_id), "item_id")
    mask = (samples["request_id"] == rid).to_numpy() & (samples["item_id"] == iid).to_numpy()
    if not mask.any():
        raise ValueError(
            f"request_id and item_id must identify an exposure in the logs. "
            f"Got request_id={rid!r}, item_id={iid!r} instead (no such exposure)."
        )
    return ranker.explain(samples.loc[mask].reset_index(drop=True), top=top, history=samples)


@command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 user error, 2 usage error)."""
    cli = parser("ltr.explain", "Print the top feature contributions behind one exposure's score.")
    cli.add_argument("bundle", help="bundle directory written by python -m ltr.train")
    cli.add_argument("logs", help="logs directory (Parquet/CSV tables)")
    cli.add_argument("--request-id", required=True)
    cli.add_argument("--item-id", required=True)
    cli.add_argument("--top", type=int, default=10, help="number of contributions to print (default 10)")
    add_tz(cli)
    add_ts_unit(cli)
    args = cli.parse_args(argv)

    ranker = Ranker.load(args.bundle)
    logs = read_logs(args.logs, tz=args.tz, ts_unit=args.ts_unit)
    table = explain_sample(ranker, logs, args.request_id, args.item_id, top=args.top)
    if table.empty:
        print(f"request {args.request_id} item {args.item_id}: every contribution is zero.")
        return 0
    first = table.iloc[0]
    print(f"request {first['request_id']} item {first['item_id']}  model {ranker.model.name}  "
          f"score {first['score']:.6f}  logit {first['logit']:+.4f}  bias {first['bias']:+.4f}")
    shown = table[["rank", "feature", "value", "contribution"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
