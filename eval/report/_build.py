"""Every number of the experiment readout, gathered as a JSON-ready dict.

Order of the readout: the A/B table (metric, control, treatment, lift, CI, p, flag) with the
sample-ratio-mismatch check, then offline vs online AUC, GAUC, calibration, the log funnel
and the recall funnel. The renderers (:mod:`eval.report._render`) only format this dict.

Every section but the bundle's offline scores and the recall funnel is computed from the
aggregated tables of :mod:`eval.report._tables` (unit-day sums, counts per score value,
per-user AUCs): :func:`build_readout` builds them from in-memory samples, the Dask engine
sums them over partitions and calls :func:`readout_of_tables`, the same code.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from eval.ab import (
    MIN_EVENTS,
    SEQUENTIAL_TUNING_UNITS,
    ABResult,
    Inference,
    PrePeriod,
    UnitDays,
    aa_self_check_table,
    compare_table,
    daily_lift_table,
    segment_lift_table,
)
from eval.ab._checks import REQUIRED, check_samples
from eval.funnel import RECALL_KS, TOP_NS, log_funnel, recall_funnel
from eval.online_offline import auc_rows, gauc_entry, score_counts, user_aucs, user_score_counts
from eval.report._abview import ab_section, daily_section, segment_section, self_check_section
from eval.report._json import clean, records
from eval.report._progress import Steps
from eval.report._scores import calibration_section
from eval.report._tables import ONLINE, ReadoutTables, in_days
from eval.report._verdict import verdicts
from ltr._validation import check_choice, check_int
from ltr.logs import Logs, format_day

__all__ = ["LogFacts", "build_readout", "readout_of_tables"]


@dataclass(frozen=True)
class LogFacts:
    """What the readout needs of the logs besides the aggregated tables.

    ``buckets``: the buckets of the requests table (sorted); ``funnel((lo, hi))``: the
    :func:`eval.funnel.log_funnel` table of the days ``lo..hi``. :meth:`of` builds them from
    in-memory logs and samples; the Dask engine (:mod:`eval.report._dask`) from partial counts
    of its partitions, which add up to the same table.
    """

    buckets: tuple[str, ...]
    funnel: Callable[[tuple[int, int]], pd.DataFrame]

    @classmethod
    def of(cls, logs: Logs, samples: pd.DataFrame) -> LogFacts:
        """The facts of in-memory logs and their samples."""
        requests = logs.requests
        buckets = sorted({str(b) for b in pd.unique(requests["bucket"])}) if "bucket" in requests.columns else []
        return cls(buckets=tuple(buckets),
                   funnel=lambda days: log_funnel(logs, in_days(samples, days), days=days))


@dataclass(frozen=True)
class _ABOptions:
    """The A/B settings of a readout, as the user gave them (compare_buckets checks them)."""

    control: str | None
    treatment: str | None
    unit: Any
    adjust: Any
    primary: Any
    inference: Inference
    segment: str | None
    aa_splits: int
    seed: int


def _check_buckets(buckets: list[str], control: str | None, treatment: str | None,
                   logged_buckets: list[str]) -> None:
    if (control is None) != (treatment is None):
        raise ValueError("--control and --treatment go together; give both or neither.")
    for name, value in (("control", control), ("treatment", treatment)):
        # A bucket that is logged but has no exposure in the window gets its own message:
        # "unknown bucket" would send the user hunting for a typo that is not there.
        if value is not None and value not in buckets:
            if value in logged_buckets:
                raise ValueError(f"{name} must be a bucket with users in the readout window. Got {value!r}, "
                                 "which has no exposed users there.")
            raise ValueError(f"{name} must be one of the buckets {logged_buckets or buckets}. Got {value!r} instead.")


def _compare(window: UnitDays, options: _ABOptions, pre: PrePeriod | None) -> ABResult:
    treatments = [options.treatment] if options.treatment is not None else None
    return compare_table(window, options.control, treatments, options.inference, options.adjust, options.primary,
                         pre)


def _ab_sections(window: UnitDays, options: _ABOptions, pre: PrePeriod | None, logged_buckets: list[str]) -> dict:
    """The A/B section, the A/A self-check, the daily view and the segments."""
    buckets = window.known_buckets()
    if len(buckets) < 2 and options.control is None and options.treatment is None:
        note = f"only one bucket ({', '.join(buckets) or 'none'}): there is no comparison."
        absent = {"available": False, "note": note}
        return {"ab": {**absent, "buckets": buckets}, "self_check": absent, "daily": absent, "segments": None}
    _check_buckets(buckets, options.control, options.treatment, logged_buckets)
    result = _compare(window, options, pre)
    out: dict = {"ab": ab_section(result)}
    inf = result.inference
    if options.aa_splits > 0:
        check = aa_self_check_table(window, result.control, result.primary, result.adjust, inf,
                                    splits=options.aa_splits, seed=options.seed)
        out["self_check"] = self_check_section(check, result.primary, result.alpha)
    else:
        out["self_check"] = {"available": False, "note": "A/A self-check turned off (0 splits)."}
    daily = {t: daily_lift_table(window, result.control, t, result.primary, inf) for t in result.treatments}
    out["daily"] = daily_section(daily, result.primary, inf.sequential)
    out["segments"] = None
    if options.segment is not None:
        seg = {t: segment_lift_table(window, result.control, t, result.primary, inf) for t in result.treatments}
        out["segments"] = segment_section(seg)
    return out


@dataclass(frozen=True)
class _Scores:
    """The score sections' inputs on the readout window: the AUC table, the calibration section
    (None: no score) and the per-user rows of GAUC by score name."""

    n_rows: int
    auc: pd.DataFrame
    calibration: dict | None
    gauc: dict[str, pd.DataFrame]
    online: bool
    offline_name: str | None


def _auc_section(scores: _Scores) -> dict:
    out = {"online_available": scores.online, "offline_available": scores.offline_name is not None,
           "offline_name": scores.offline_name, "n_rows": scores.n_rows,
           "rows": records(scores.auc.set_index("segment"))}
    if not scores.online:
        out["note"] = "online AUC unavailable: the logs have no rank_score (candidates table)."
    return out


def _window(units: UnitDays, start_day: int | None, end_day: int | None, experiment_start: int | None,
            cuped: bool) -> tuple[UnitDays, PrePeriod | None, int, int]:
    """The unit-day table of the readout window, the CUPED pre-period (None without CUPED), first
    and last day.

    The window starts at ``start_day``, else at ``experiment_start``, else on the first day;
    the pre-period is every day before ``experiment_start`` (the day the treatment went live),
    else before the window.
    """
    days = units.frame["day"].to_numpy()
    lo = start_day if start_day is not None else (experiment_start if experiment_start is not None
                                                  else int(days.min()))
    hi = int(days.max()) if end_day is None else end_day
    if experiment_start is not None and lo < experiment_start:
        raise ValueError(f"--start must not be before --experiment-start ({format_day(experiment_start)}): the "
                         f"readout window cannot hold days before the treatment. Got {format_day(lo)} instead.")
    if hi < lo:
        raise ValueError(f"end day must not be before start day ({format_day(lo)}). Got {format_day(hi)} instead.")
    window = units.where((days >= lo) & (days <= hi))
    if len(window.frame) == 0:
        raise ValueError(f"no exposures between {format_day(lo)} and {format_day(hi)}.")
    pre_end = lo if experiment_start is None else experiment_start
    if not cuped:
        return window, None, lo, hi
    before = units.where(days < pre_end)
    if len(before.frame) == 0:
        raise ValueError(f"CUPED needs a pre-period: no exposures before {format_day(pre_end)} "
                         f"({'--experiment-start' if experiment_start is not None else 'the start day'}).")
    return window, PrePeriod(before.sums_by(["user_id"]).set_index("user_id"), before.days()), lo, hi


def _logged_buckets(facts: LogFacts, units: UnitDays) -> list[str]:
    return sorted(set(units.known_buckets()) | set(facts.buckets))


def _offline_scores(window: pd.DataFrame, offline_scores: pd.DataFrame, offline_name: str) -> _Scores:
    """The score sections' inputs of the window's exposures scored by a bundle (single machine only)."""
    scored = window.merge(offline_scores.rename(columns={"score": "offline_score"}),
                          on=["request_id", "item_id"], how="inner")
    if len(scored) == 0:
        raise ValueError("the bundle's scores match no exposure of the readout window.")
    names = {"online_auc": ONLINE, "offline_auc": "offline_score"}
    present = {side: col for side, col in names.items() if col in scored.columns}
    both = scored.dropna(subset=list(present.values()))
    return _Scores(n_rows=len(scored), auc=auc_rows({side: score_counts(both, col) for side, col in present.items()}),
                   calibration=calibration_section(score_counts(scored, "offline_score"), offline_name),
                   gauc={name: user_aucs(user_score_counts(scored, col))
                         for name, col in (("online", ONLINE), (offline_name, "offline_score")) if col in scored},
                   online=ONLINE in scored.columns, offline_name=offline_name)


def _online_scores(tables: ReadoutTables, window: UnitDays, lo: int, hi: int) -> _Scores:
    """The score sections' inputs of the window from the aggregated tables (both engines)."""
    if tables.scores is None or tables.user_aucs is None:
        counts = window.sums_by(["day", "bucket"]).rename(columns={"exposures": "n", "clicks": "positives"})
        return _Scores(n_rows=window.n_exposures(), auc=auc_rows({}, counts), calibration=None, gauc={},
                       online=False, offline_name=None)
    summary = tables.scores((lo, hi))
    return _Scores(n_rows=window.n_exposures(), auc=summary.auc, calibration=summary.calibration,
                   gauc={"online": tables.user_aucs((lo, hi))}, online=True, offline_name=None)


def _score_sections(out: dict, facts: LogFacts, scores: _Scores, lo: int, hi: int, steps: Steps) -> None:
    """AUC, GAUC, calibration and the log funnel of the window, into ``out``."""
    with steps.step("offline vs online AUC"):
        out["auc"] = _auc_section(scores)
    with steps.step("GAUC"):
        out["gauc"] = {name: gauc_entry(users) for name, users in scores.gauc.items()}
    if scores.calibration is not None:
        with steps.step("calibration"):
            out["calibration"] = scores.calibration
    else:
        out["calibration"] = {"note": "no score to calibrate (no rank_score and no bundle)."}
    with steps.step("log funnel"):
        out["funnel"] = records(facts.funnel((lo, hi)))


def build_readout(
    logs: Logs | LogFacts,
    samples: pd.DataFrame,
    *,
    control: str | None = None,
    treatment: str | None = None,
    unit: str = "user",
    alpha: float = 0.05,
    adjust: str | None = "holm",
    primary: str = "ctr",
    sequential: bool = False,
    tuning_units: int = SEQUENTIAL_TUNING_UNITS,
    min_events: int = MIN_EVENTS,
    segment: str | None = None,
    start_day: int | None = None,
    end_day: int | None = None,
    experiment_start: int | None = None,
    cuped: bool = False,
    aa_splits: int = 500,
    seed: int = 0,
    offline_scores: pd.DataFrame | None = None,
    offline_name: str = "offline",
    candidates: dict[str, pd.DataFrame] | None = None,
    ks: tuple[int, ...] = RECALL_KS,
    quiet: bool = True,
    join_report: dict | None = None,
    _progress: Steps | None = None,
) -> dict:
    """Compute the whole readout as a JSON-ready dict, the verdict first.

    Parameters
    ----------
    logs : ltr.Logs or LogFacts
        The logs, or only the facts the readout needs of them (no recall ``candidates`` then).
    samples : DataFrame
        ``ltr.join_samples(logs).samples``.
    control, treatment : str, optional
        Buckets to compare; without them every bucket is compared with the first (sorted).
    unit : {"user", "request"}
        Randomisation unit.
    alpha : float, default 0.05
        Significance level of the whole readout.
    adjust : {"holm", "bh", None}, default "holm"
        Adjustment of the secondary metrics (None: exploratory); see :func:`eval.ab.compare_buckets`.
    primary : str, default "ctr"
        The metric that decides the verdict.
    sequential, tuning_units, min_events
        See :func:`eval.ab.compare_buckets`.
    segment : str, optional
        A requests column: the primary metric's lift per value of it.
    start_day, end_day : int, optional
        Readout window (day indices); default all days (from ``experiment_start`` when given).
    experiment_start : int, optional
        The day the treatment went live; the CUPED pre-period is the days before it (default:
        the days before ``start_day``).
    cuped : bool, default False
        CUPED with the pre-period; refused (with a warning) when the arms already differ there.
    aa_splits, seed : int
        Random halves of the control bucket for the A/A self-check (0: off) and their seed.
    offline_scores : DataFrame, optional
        ``request_id, item_id, score`` from a ranker bundle (held-out rows).
    candidates : dict, optional
        Recall candidate frames by label.

    Returns
    -------
    dict
        ``verdict`` (one entry per treatment), ``window``, ``ab``, ``self_check``, ``daily``,
        ``segments``, ``auc``, ``gauc``, ``calibration``, ``funnel``, ``recall`` (and ``join``).
    """
    steps = _progress if _progress is not None else Steps(6, quiet)
    check_choice(unit, "unit", ("user", "request"))
    if candidates and not isinstance(logs, Logs):
        raise ValueError("recall candidates need the logs in memory: give build_readout the Logs, not LogFacts.")
    if segment is not None and segment not in samples.columns:
        raise ValueError(f"segment must be a column of the requests table. Got {segment!r}, which is not one "
                         f"(columns: {sorted(map(str, samples.columns))}).")
    check_samples(samples, "samples", [c for c in REQUIRED if c != "bucket" or c in samples.columns])
    facts = LogFacts.of(logs, samples) if isinstance(logs, Logs) else logs
    tables = ReadoutTables.of(samples, unit, segment)

    def offline(lo: int, hi: int) -> _Scores:
        return _offline_scores(in_days(samples, (lo, hi)), offline_scores, offline_name)

    options = _ABOptions(control=control, treatment=treatment, unit=unit, adjust=adjust, primary=primary,
                         inference=Inference(alpha=alpha, min_events=min_events, sequential=sequential,
                                             tuning_units=tuning_units),
                         segment=segment, aa_splits=aa_splits, seed=seed)
    out = _readout(facts, tables, options, _Window(start_day, end_day, experiment_start, cuped), steps,
                   offline if offline_scores is not None else None)
    with steps.step("recall funnel"):
        out["recall"] = [clean(recall_funnel(frame, logs, samples, ks=ks, top_ns=TOP_NS, label=label))
                         for label, frame in (candidates or {}).items() if isinstance(logs, Logs)]
    if join_report is not None:
        out["join"] = clean(join_report)
    return clean(out)


@dataclass(frozen=True)
class _Window:
    start_day: int | None
    end_day: int | None
    experiment_start: int | None
    cuped: bool


def _readout(facts: LogFacts, tables: ReadoutTables, options: _ABOptions, days: _Window, steps: Steps,
             offline: Callable[[int, int], _Scores] | None) -> dict:
    """Every section of the readout but the recall funnel, from the aggregated tables."""
    check_int(options.aa_splits, "aa_splits", minimum=0)
    window, pre, lo, hi = _window(tables.units, days.start_day, days.end_day, days.experiment_start, days.cuped)
    out: dict = {"verdict": [], "window": [format_day(lo), format_day(hi)], "n_exposures": window.n_exposures(),
                 "n_users": int(window.frame["user_id"].nunique())}
    with steps.step("A/B statistics, A/A self-check, daily view"):
        out.update(_ab_sections(window, options, pre, _logged_buckets(facts, tables.units)))
    out["verdict"] = verdicts(out["ab"], out["self_check"], hi - lo + 1)
    scores = offline(lo, hi) if offline is not None else _online_scores(tables, window, lo, hi)
    _score_sections(out, facts, scores, lo, hi, steps)
    return out


def readout_of_tables(facts: LogFacts, tables: ReadoutTables, *, control: str | None = None,
                      treatment: str | None = None, alpha: float = 0.05, adjust: str | None = "holm",
                      primary: str = "ctr", sequential: bool = False,
                      tuning_units: int = SEQUENTIAL_TUNING_UNITS, min_events: int = MIN_EVENTS,
                      start_day: int | None = None, end_day: int | None = None,
                      experiment_start: int | None = None, cuped: bool = False, aa_splits: int = 500,
                      seed: int = 0, quiet: bool = True, join_report: dict | None = None,
                      _progress: Steps | None = None) -> dict:
    """:func:`build_readout` from aggregated tables (no bundle, no recall candidates).

    ``tables`` (:class:`eval.report._tables.ReadoutTables`) fixes the unit and the segment
    column; the other parameters are those of :func:`build_readout`. This is what the Dask
    engine calls with the tables summed over its partitions; :func:`build_readout` calls the
    same code with the tables of its samples.
    """
    steps = _progress if _progress is not None else Steps(6, quiet)
    options = _ABOptions(control=control, treatment=treatment, unit=tables.units.unit, adjust=adjust,
                         primary=primary, inference=Inference(alpha=alpha, min_events=min_events,
                                                              sequential=sequential, tuning_units=tuning_units),
                         segment=tables.units.segment, aa_splits=aa_splits, seed=seed)
    out = _readout(facts, tables, options, _Window(start_day, end_day, experiment_start, cuped), steps, None)
    with steps.step("recall funnel"):
        out["recall"] = []
    if join_report is not None:
        out["join"] = clean(join_report)
    return clean(out)
