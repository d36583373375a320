"""Daily refresh: ``python -m ltr.refresh BUNDLE LOGS --through YYYY-MM-DD [--out BUNDLE2]``.

Production re-publishes features daily while the model is retrained weekly. This advances a
bundle's point-in-time statistics (counting tables and click history) to every log row of the
days up to ``--through``, without touching the model or anything learned from the training
rows (priors, bin edges, categories). The families frozen at training (user-side propensities,
see ``FeatureBuilder(frozen_families=...)``) keep their training end: they are refreshed with
the model. A refreshed bundle scores day ``through + 1`` exactly as ``python -m ltr.score`` on
the full logs does. The manifest keeps the training window (``training``) and records the
statistics' end day (``statistics``). With ``--engine dask`` on partitioned logs, each
partition's tables are counted on its worker and summed on the client: the same refreshed bundle.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ltr._cli import add_ts_unit, command, parser
from ltr.distributed import add_engine_options, dask_client, engine_options, open_logs
from ltr.distributed._parts import labelled_parts
from ltr.features import FeatureBuilder, labelled_samples
from ltr.features._partial import refresh_from_parts
from ltr.logs import Logs, as_day, format_day, parse_day, read_logs
from ltr.serving import Ranker, statistics_record

__all__ = ["main", "refresh_bundle"]


def refresh_bundle(ranker: Ranker | str | Path, logs: Logs, through: int | str) -> Ranker:
    """A copy of ``ranker`` whose statistics count the logs' days up to ``through``.

    Parameters
    ----------
    ranker : ltr.serving.Ranker or path to a bundle
    logs : ltr.logs.Logs
        Logs with the days to count (read in the bundle's time zone).
    through : str "YYYY-MM-DD" or int day index
        Last day counted.

    Returns
    -------
    Ranker
        Same model; ``metadata["statistics"]`` updated, ``metadata["training"]`` kept.

    Raises
    ------
    ValueError
        No log row on or before ``through``, or a bundle with lag-based cut-offs.
    """
    if not isinstance(ranker, Ranker):
        ranker = Ranker.load(ranker)
    day = as_day(through, "through")
    samples = labelled_samples(logs, ranker.features.tz)
    return _with_features(ranker, ranker.features.refreshed(samples, day))


def _with_features(ranker: Ranker, features: FeatureBuilder) -> Ranker:
    """The ranker with refreshed ``features``, its manifest's ``statistics`` updated."""
    metadata = {**ranker.metadata, "statistics": {**statistics_record(features), "refreshed": True}}
    return Ranker(features, ranker.model, ranker.inputs, metadata)


@command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 user error, 2 usage error)."""
    cli = parser("ltr.refresh", "Advance a ranker bundle's point-in-time statistics to --through without retraining.")
    cli.add_argument("bundle", help="bundle directory written by python -m ltr.train")
    cli.add_argument("logs", help="logs directory (Parquet/CSV tables) holding the days to count")
    cli.add_argument("--through", required=True, help="last day the statistics count, YYYY-MM-DD")
    cli.add_argument("--out", default=None, help="bundle directory to write (default: replace BUNDLE)")
    add_ts_unit(cli)
    add_engine_options(cli)
    args = cli.parse_args(argv)
    options = engine_options(args)

    day = parse_day(args.through, "through")
    ranker = Ranker.load(args.bundle)
    if options.is_dask:
        with dask_client(options) as client:
            opened = open_logs(client, args.logs, tz=ranker.features.tz, ts_unit=args.ts_unit)
            refreshed = _with_features(ranker, refresh_from_parts(ranker.features, labelled_parts(opened).run, day))
    else:
        refreshed = refresh_bundle(ranker, read_logs(args.logs, tz=ranker.features.tz, ts_unit=args.ts_unit), day)
    out = args.out or args.bundle
    refreshed.save(out)
    stats = refreshed.metadata["statistics"]
    frozen = ", ".join(stats["frozen_families"]) or "none"
    training = ranker.metadata.get("training", {})
    print(f"refreshed {args.bundle}: statistics through {format_day(day)} (frozen with the model through "
          f"{stats['frozen_through']}: {frozen}); training window "
          f"{training.get('train_start')}..{training.get('train_end')}; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
