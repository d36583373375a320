"""Per-sample explanations: which features pushed a score up or down.

``python -m ltr.explain BUNDLE LOGS --request-id R --item-id I [--top 10]`` prints the
largest contributions (logit scale) behind one exposure's score, computed point-in-time from
the logs exactly as ``python -m ltr.score`` scores it. Contributions are weight x value per
active feature for logistic regression and LightGBM ``pred_contrib`` (SHAP) values; with the
bias they sum to the logit of the score.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit

__all__ = ["explain_sample", "main", "top_contributions"]

_COLUMNS = ["row", "request_id", "item_id", "rank", "feature", "value", "contribution", "bias", "logit", "score"]


def top_contributions(frame: pd.DataFrame, X, contributions: np.ndarray, names: Sequence[str],
                      top: int) -> pd.DataFrame:
    """Long table of the ``top`` largest absolute contributions per row.

    Parameters
    ----------
    frame : DataFrame
        The explained rows (request_id and item_id are copied when present).
    X : sparse matrix or ndarray of shape (n, p)
        Model inputs (for the ``value`` column).
    contributions : ndarray of shape (n, p + 1)
        Last column is the bias.
    names : sequence of str, length p
    top : int

    Returns
    -------
    DataFrame
        Columns ``row, request_id, item_id, rank, feature, value, contribution, bias, logit,
        score``; sorted by row then rank. Zero contributions are left out.
    """
    n, width = contributions.shape
    p = width - 1
    per_feature = contributions[:, :p]
    k = min(int(top), p)
    # Stable sort on -|c| keeps ties in feature order, so the output is deterministic.
    order = np.argsort(-np.abs(per_feature), axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(n), k)
    cols = order.ravel()
    values = per_feature[rows, cols]
    dense = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    logit = contributions.sum(axis=1)
    out = pd.DataFrame({
        "row": rows,
        "request_id": frame["request_id"].to_numpy()[rows] if "request_id" in frame else pd.NA,
        "item_id": frame["item_id"].to_numpy()[rows] if "item_id" in frame else pd.NA,
        "rank": np.tile(np.arange(1, k + 1), n),
        "feature": np.asarray(list(names), dtype=object)[cols],
        "value": dense[rows, cols],
        "contribution": values,
        "bias": contributions[rows, p],
        "logit": logit[rows],
        "score": expit(logit)[rows],
    }, columns=_COLUMNS)
    return out.loc[values != 0].reset_index(drop=True)


def _match_id(column: pd.Series, text: str, name: str):
    """Convert a command-line id to the id column's type."""
    if pd.api.types.is_integer_dtype(column.dtype):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name} must be an integer id like the logs'. Got {text!r} instead.") from None
    return str(text)


def explain_sample(bundle, logs, request_id, item_id, top: int = 10) -> pd.DataFrame:
    """Explain one exposure of ``logs`` with a bundle, point-in-time.

    Parameters
    ----------
    bundle : path or ltr.serving.Ranker
    logs : ltr.logs.Logs
    request_id, item_id
        The exposure; converted to the logs' id type when given as strings.
    top : int, default 10

    Raises
    ------
    ValueError
        No exposure with that request_id and item_id.
    """
    from ltr.logs import join_samples
    from ltr.serving import Ranker

    ranker = bundle if isinstance(bundle, Ranker) else Ranker.load(bundle)
    samples = join_samples(logs).samples
    rid = _match_id(samples["request_id"], str(request_id), "request_id")
    iid = _match_id(samples["item_id"], str(item_id), "item_id")
    mask = (samples["request_id"] == rid).to_numpy() & (samples["item_id"] == iid).to_numpy()
    if not mask.any():
        raise ValueError(
            f"request_id and item_id must identify an exposure in the logs. "
            f"Got request_id={rid!r}, item_id={iid!r} instead (no such exposure)."
        )
    return ranker.explain(samples.loc[mask].reset_index(drop=True), top=top, history=samples)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    from ltr.train import _Parser

    parser = _Parser(
        prog="python -m ltr.explain",
        description="Print the top feature contributions behind one exposure's score.",
    )
    parser.add_argument("bundle", help="bundle directory written by python -m ltr.train")
    parser.add_argument("logs", help="logs directory (Parquet/CSV tables)")
    parser.add_argument("--request-id", required=True)
    parser.add_argument("--item-id", required=True)
    parser.add_argument("--top", type=int, default=10, help="number of contributions to print (default 10)")
    parser.add_argument("--tz", default="UTC", help="time zone of calendar days (default UTC)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage mistake (1): a status, not an exception
        return int(exc.code or 0)
    try:
        from ltr.logs import read_logs
        from ltr.serving import Ranker

        ranker = Ranker.load(args.bundle)
        table = explain_sample(ranker, read_logs(args.logs, tz=args.tz), args.request_id, args.item_id,
                               top=args.top)
    except (ValueError, TypeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
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
