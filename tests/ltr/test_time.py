"""Time: calendar days in a time zone (any datetime resolution, DST), timestamp units and their errors."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ltr.logs import LogValidationError, day_index, from_frames, local_seconds, parse_day, read_logs, write_logs
from ltr.logs._time import PLAUSIBLE_SECONDS, check_tz, likely_ts_unit

ZONES = ["Asia/Shanghai", "America/New_York", "Europe/Berlin", "UTC"]
EPOCH = dt.date(1970, 1, 1)
#: UTC instants of DST changes (and their local midnights' neighbourhood): New York and Berlin.
DST_CHANGES = ["2022-03-13T07:00:00Z", "2022-11-06T06:00:00Z", "2022-03-27T01:00:00Z", "2022-10-30T01:00:00Z",
               "2030-03-10T07:00:00Z", "2030-10-27T01:00:00Z"]
UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def reference_days(seconds: np.ndarray, tz: str) -> np.ndarray:
    """Days since 1970-01-01 of pandas' own local midnight, one timestamp at a time."""
    local = pd.to_datetime(seconds, unit="s", utc=True).tz_convert(tz).normalize()
    return np.array([(stamp.date() - EPOCH).days for stamp in local])


def random_epochs(seed: int) -> np.ndarray:
    """Uniform epochs over 1960..2100 plus epochs within two days of DST changes and local midnights."""
    rng = np.random.default_rng(seed)
    uniform = rng.integers(-315_619_200, PLAUSIBLE_SECONDS[1], 400)
    changes = pd.to_datetime(DST_CHANGES).as_unit("s").asi8  # asi8 counts in the index's own unit
    near_dst = np.repeat(changes, 60) + rng.integers(-2 * 86_400, 2 * 86_400, 60 * len(changes))
    midnights = parse_day("2022-04-25") * 86_400 + rng.integers(-12, 13, 200) * 3600 + rng.integers(-2, 3, 200)
    return np.concatenate([uniform, near_dst, midnights]).astype(np.int64)


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("seed", [0, 1])
def test_day_index_of_epoch_seconds_matches_pandas(tz, seed):
    seconds = random_epochs(seed)
    np.testing.assert_array_equal(day_index(seconds, tz), reference_days(seconds, tz))


@pytest.mark.parametrize("tz", [*ZONES, "Asia/Kathmandu", "Australia/Lord_Howe"])  # +5:45; a 30-minute DST
@pytest.mark.parametrize("size", [1, 40, 3000])  # the zone rule per instant (a request), pandas beyond
def test_local_seconds_give_pandas_local_day_and_hour(tz, size):
    rng = np.random.default_rng(size)
    seconds = rng.choice(random_epochs(size), size)
    if size == 3000:
        seconds[:5] = seconds[0]  # repeated instants
    local = local_seconds(seconds, tz)
    stamps = pd.to_datetime(seconds, unit="s", utc=True).tz_convert(tz)
    np.testing.assert_array_equal(local % 86_400 // 3600, stamps.hour)
    np.testing.assert_array_equal(local % 3600 // 60, stamps.minute)
    np.testing.assert_array_equal(local // 86_400, reference_days(seconds, tz))
    np.testing.assert_array_equal(day_index(seconds, tz), reference_days(seconds, tz))


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("unit", list(UNITS))
@pytest.mark.parametrize("aware", [True, False])
def test_day_index_of_datetimes_is_right_for_every_resolution(tz, unit, aware):
    seconds = random_epochs(2)
    rng = np.random.default_rng(3)
    # Sub-second parts just before a local midnight must not round into the next day.
    fraction = rng.integers(0, UNITS[unit], len(seconds)) if unit != "s" else np.zeros(len(seconds), np.int64)
    stamps = pd.Series(pd.to_datetime(seconds * UNITS[unit] + fraction, unit=unit, utc=True)).dt.as_unit(unit)
    assert str(stamps.dtype) == f"datetime64[{unit}, UTC]"
    # Naive datetime64 values are UTC instants.
    stamps = stamps.dt.tz_convert(tz) if aware else stamps.dt.tz_localize(None)
    np.testing.assert_array_equal(day_index(stamps, tz), reference_days(seconds, tz))


def test_day_index_on_known_days():
    # 2022-04-24 23:05 in Shanghai is 15:05 UTC the same day; 16:00 UTC is the next Shanghai day.
    ts = pd.to_datetime(["2022-04-24T15:05:00Z", "2022-04-24T16:00:00Z", "2022-11-06T04:30:00Z"]).as_unit("s").asi8
    assert day_index(ts, "Asia/Shanghai").tolist() == [parse_day("2022-04-24"), parse_day("2022-04-25"),
                                                       parse_day("2022-11-06")]
    # 00:30 New York on the fall-back day (EDT, UTC-4) is 04:30 UTC.
    assert day_index(ts[2:], "America/New_York").tolist() == [parse_day("2022-11-06")]
    assert day_index(np.array([-1, 0, 86_399, 86_400])).tolist() == [-1, 0, 0, 1]


def test_bad_time_zone_is_refused_early(tmp_path):
    with pytest.raises(ValueError, match=r"^tz must be an IANA time zone name such as 'Asia/Shanghai'\. "
                                         r"Got 'Mars/Olympus' instead\.$"):
        check_tz("Mars/Olympus")
    with pytest.raises(ValueError, match="tz must be an IANA time zone"):
        day_index(np.array([0]), "Asia/Shang")
    with pytest.raises(ValueError, match="tz must be an IANA time zone"):
        read_logs(tmp_path, tz="CET+1")
    with pytest.raises(ValueError, match=r"ts_unit must be one of \['s', 'ms', 'us', 'ns'\]\. Got 'sec' instead\."):
        read_logs(tmp_path, ts_unit="sec")


# ----------------------------------------------------------------------------- units


T0 = parse_day("2022-04-25") * 86_400 + 1234


def tables(ts: np.ndarray | pd.Series) -> dict[str, pd.DataFrame]:
    """Valid logs whose three timestamp columns all hold ``ts`` (a click at its exposure time)."""
    n = len(ts)
    return {
        "requests": pd.DataFrame({"request_id": np.arange(n), "ts": ts, "user_id": np.arange(n) % 3}),
        "exposures": pd.DataFrame({"request_id": np.arange(n), "item_id": np.arange(n) % 5, "ts": ts,
                                   "position": np.ones(n, np.int64)}),
        "clicks": pd.DataFrame({"request_id": np.arange(n), "item_id": np.arange(n) % 5, "ts": ts}),
    }


SECONDS = T0 + np.array([0, 1, 59, 3600, 86_399, 5 * 86_400])


@pytest.mark.parametrize("unit", list(UNITS))
@pytest.mark.parametrize("kind", ["int", "float", "text"])
def test_numeric_timestamps_in_every_unit_become_floored_seconds(unit, kind):
    ticks = SECONDS * UNITS[unit] + (UNITS[unit] - 1)  # the last tick of each second
    ts: np.ndarray | pd.Series = ticks
    if kind == "float" and unit in ("s", "ms"):  # floats carry only ~16 digits: us/ns would not be exact
        ts = ticks.astype(np.float64) + (0.5 if unit == "s" else 0.0)
    elif kind == "text":
        ts = pd.Series(ticks.astype(str), dtype=object)
    logs = from_frames(**tables(ts), ts_unit=unit)
    for table in ("requests", "exposures", "clicks"):
        assert logs.tables()[table]["ts"].tolist() == SECONDS.tolist()
        assert logs.tables()[table]["ts"].dtype == np.int64


@pytest.mark.parametrize(("given", "actual", "message"), [
    ("s", "ms", r"these look like milliseconds: pass --ts-unit ms \(ts_unit='ms' in Python\)\."),
    ("s", "us", r"these look like microseconds: pass --ts-unit us"),
    ("s", "ns", r"these look like nanoseconds: pass --ts-unit ns"),
    ("ms", "s", r"milliseconds; these look like seconds: pass --ts-unit s"),
    ("us", "ms", r"these look like milliseconds: pass --ts-unit ms"),
])
def test_implausible_units_name_the_likely_unit(given, actual, message):
    ticks = SECONDS * UNITS[actual]
    with pytest.raises(LogValidationError, match=r"^logs table 'requests', column 'ts': 6 timestamp\(s\) lie outside "
                                                 r"2000-01-01\.\.2100-01-01 when read as epoch .*" + message) as info:
        from_frames(**tables(ticks), ts_unit=given)
    assert info.value.example == {"row": 0, "request_id": 0, "ts": int(ticks[0]), "user_id": 0}


def test_a_few_broken_rows_are_named_as_such():
    ts = SECONDS.copy()
    ts[3] = 0
    with pytest.raises(LogValidationError, match=r"1 timestamp\(s\) lie outside .* the other rows look like epoch "
                                                 r"seconds; these rows are broken\..*'row': 3"):
        from_frames(**tables(ts))
    with pytest.raises(LogValidationError, match=r"not epoch timestamps in seconds, milliseconds"):
        from_frames(**tables(np.arange(6)))


def test_likely_unit_uses_the_median():
    assert likely_ts_unit(np.array([0, 1_650_000_000_000, 1_650_000_001_000])) == "ms"
    assert likely_ts_unit(np.array([1_650_000_000])) == "s"
    assert likely_ts_unit(np.array([42.0])) is None
    assert likely_ts_unit(np.array([])) is None


def test_aware_datetimes_of_any_unit_and_offsets_are_kept():
    stamps = pd.Series(pd.to_datetime(SECONDS, unit="s", utc=True)).dt.as_unit("ms").dt.tz_convert("Asia/Shanghai")
    iso = pd.Series([s.isoformat() for s in stamps], dtype=object)
    for ts in (stamps, iso):
        assert from_frames(**tables(ts)).requests["ts"].tolist() == SECONDS.tolist()
    too_early = pd.Series(pd.to_datetime(SECONDS // 1000, unit="s", utc=True))  # ms read as seconds upstream
    with pytest.raises(LogValidationError, match=r"6 timestamp\(s\) lie outside 2000-01-01\.\.2100-01-01 \(datetimes "
                                                 r"made from epoch numbers with the wrong unit"):
        from_frames(**tables(too_early))


@pytest.mark.parametrize("tz", ["UTC", "Asia/Shanghai"])
def test_naive_times_are_refused_even_with_a_time_zone(tz):
    # The zone of calendar days says nothing about the clock a log was written with.
    naive = pd.Series(pd.to_datetime(SECONDS, unit="s"))
    with pytest.raises(LogValidationError, match=r"'requests', column 'ts': timestamps are naive datetimes"):
        from_frames(**tables(naive), tz=tz)
    text = pd.Series([s.isoformat() for s in naive], dtype=object)
    with pytest.raises(LogValidationError, match=r"ISO strings need an offset"):
        from_frames(**tables(text), tz=tz)


def test_millisecond_files_read_with_ts_unit(tmp_path):
    write_logs(from_frames(**tables(SECONDS), validate=False).replace(
        **{name: frame.assign(ts=frame["ts"] * 1000) for name, frame in tables(SECONDS).items()}), tmp_path)
    with pytest.raises(LogValidationError, match="these look like milliseconds: pass --ts-unit ms"):
        read_logs(tmp_path)
    logs = read_logs(tmp_path, ts_unit="ms", tz="Asia/Shanghai")
    assert logs.exposures["ts"].tolist() == SECONDS.tolist()
    assert logs.tz == "Asia/Shanghai"
