"""ltr._validation and ltr._cli: one error shape, one exit-status convention."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr._cli import command, parse_assignments, parse_settings, parser, write_frame
from ltr._validation import check_bool, check_choice, check_float, check_frame, check_int


@pytest.mark.parametrize("value", [1, np.int64(5), 10**12])
def test_check_int_accepts_integers(value):
    assert check_int(value, "n", minimum=1) == int(value)
    assert type(check_int(value, "n")) is int


@pytest.mark.parametrize("value", [True, np.bool_(True), 1.0, "3", None])
def test_check_int_type_errors(value):
    with pytest.raises(TypeError, match=r"^n must be an int\. Got .* instead\.$"):
        check_int(value, "n")


@pytest.mark.parametrize(("value", "kwargs", "interval"), [
    (0, {"minimum": 1}, r"\[1, inf\)"),
    (11, {"minimum": 1, "maximum": 10}, r"\[1, 10\]"),
    (-3, {"maximum": -4}, r"\(-inf, -4\]"),
])
def test_check_int_range_errors(value, kwargs, interval):
    with pytest.raises(ValueError, match=rf"^n must be an int in {interval}\. Got {value} instead\.$"):
        check_int(value, "n", **kwargs)


@pytest.mark.parametrize(("value", "kwargs"), [
    (0.0, {"low": 0.0, "low_open": True}),
    (1.0, {"high": 1.0, "high_open": True}),
    (float("nan"), {}),
    (float("inf"), {}),
    (-0.5, {"low": 0.0}),
])
def test_check_float_range_errors(value, kwargs):
    with pytest.raises(ValueError, match=r"^x must be a float in .*\. Got .* instead\.$"):
        check_float(value, "x", **kwargs)


@pytest.mark.parametrize(("value", "kwargs"), [(0.0, {"low": 0.0}), (1, {"high": 1.0}), (np.float32(0.5), {})])
def test_check_float_accepts_bounds_and_numpy(value, kwargs):
    assert check_float(value, "x", **kwargs) == float(value)


@pytest.mark.parametrize("value", [True, "0.5", None, [1.0]])
def test_check_float_type_errors(value):
    with pytest.raises(TypeError, match=r"^x must be a float\. Got .* instead\.$"):
        check_float(value, "x")


def test_check_bool_choice_frame():
    assert check_bool(np.bool_(False), "flag") is False
    with pytest.raises(TypeError, match=r"flag must be a bool\. Got 1 instead\."):
        check_bool(1, "flag")
    assert check_choice("lr", "model", ("lr", "lgbm")) == "lr"
    with pytest.raises(ValueError, match=r"model must be one of \['lgbm', 'lr'\]\. Got 'svm' instead\."):
        check_choice("svm", "model", ("lr", "lgbm"))
    frame = pd.DataFrame({"a": [1]})
    assert check_frame(frame, "requests", ["a"]) is frame
    with pytest.raises(ValueError, match=r"requests must have columns \['a', 'b'\].*missing \['b'\]"):
        check_frame(frame, "requests", ["a", "b"])
    with pytest.raises(TypeError, match=r"requests must be a pandas DataFrame\. Got dict instead\."):
        check_frame({"a": [1]}, "requests")


def _demo_main(argv=None):
    p = parser("demo", "a demo command")
    p.add_argument("--n", type=int, required=True)
    args = p.parse_args(argv)
    if args.n < 0:
        raise ValueError(f"--n must be >= 0.\n  Got {args.n} instead.")
    if args.n == 99:
        Path("/nonexistent/dir/file").read_text()
    return 0


@pytest.mark.parametrize(("argv", "status", "stderr"), [
    (["--n", "1"], 0, ""),
    (["--help"], 0, ""),
    ([], 2, "usage: python -m demo"),
    (["--n", "x"], 2, "invalid int value"),
    (["--n", "-1"], 1, "error: --n must be >= 0. Got -1 instead.\n"),
    (["--n", "99"], 1, "error: no such file or directory: /nonexistent/dir/file\n"),
])
def test_command_exit_status_convention(argv, status, stderr, capsys):
    assert command(_demo_main)(argv) == status
    err = capsys.readouterr().err
    assert stderr in err
    assert "Traceback" not in err


def test_parse_assignments_and_settings(tmp_path):
    assert parse_assignments(["a=1", "b=[3,7]", "c=x", "d=0.5"], "--set") == {"a": 1, "b": (3, 7), "c": "x", "d": 0.5}
    with pytest.raises(ValueError, match=r"--feature must look like name=value\. Got 'oops' instead\."):
        parse_assignments(["oops"], "--feature")

    class Model:
        def __init__(self, epochs: int = 2, lr: float = 0.1, exact: bool = False, dims: tuple = (8,), name: str = "m",
                     extra=None):
            pass

    got = parse_settings(Model, ["epochs=3", "lr=1e-2", "exact=true", "dims=4,2", "name=z", "extra=[1]"])
    assert got == {"epochs": 3, "lr": 0.01, "exact": True, "dims": (4, 2), "name": "z", "extra": [1]}
    with pytest.raises(ValueError, match=r"--set epochs must be a int\. Got 'x' instead\."):
        parse_settings(Model, ["epochs=x"])
    with pytest.raises(ValueError, match=r"Model has no parameter 'depth'"):
        parse_settings(Model, ["depth=3"])

    frame = pd.DataFrame({"request_id": ["r1", "r2"], "score": [0.5, 0.25]})
    for name in ("out/s.parquet", "out/s.csv"):
        path = write_frame(frame, tmp_path / name)
        back = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        pd.testing.assert_frame_equal(back, frame)
