"""Command-line plumbing shared by every ``python -m`` entry point of ``ltr``, ``recall`` and ``eval``.

One convention for all commands: exit 0 on success, 2 for an argparse usage error (argparse's
own message), 1 for a user error (bad logs, a bad value, a missing or tampered file) with a
one-paragraph ``error: ...`` on stderr and no traceback. :func:`command` applies it.
"""
from __future__ import annotations

import argparse
import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ltr.logs._time import TS_UNITS

__all__ = [
    "USER_ERRORS",
    "add_ts_unit",
    "add_tz",
    "command",
    "parse_assignments",
    "parse_settings",
    "parser",
    "write_frame",
]

#: Exceptions that mean "the user gave bad input": reported in one paragraph, exit status 1.
#: ``LogValidationError`` and ``ArtifactError`` are ValueErrors.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError)


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` for ``python -m <prog>``."""
    return argparse.ArgumentParser(prog=f"python -m {prog}", description=description)


def add_tz(parser_: argparse.ArgumentParser) -> None:
    """The ``--tz`` option: the IANA time zone in which calendar days are counted."""
    parser_.add_argument("--tz", default="UTC",
                         help="IANA time zone of calendar days, e.g. Asia/Shanghai (default UTC)")


def add_ts_unit(parser_: argparse.ArgumentParser) -> None:
    """The ``--ts-unit`` option: the unit of numeric timestamps in the files read."""
    parser_.add_argument("--ts-unit", default="s", choices=list(TS_UNITS),
                         help="unit of numeric epoch timestamps in the files: s (default), ms, us or ns; "
                              "the validated logs hold epoch seconds")


class Main(Protocol):
    """A command-line entry point: ``main(argv=None) -> exit status``."""

    def __call__(self, argv: list[str] | None = None) -> int: ...


def command(main: Main) -> Main:
    """Wrap ``main(argv) -> status`` with the exit-status convention of this module.

    ``SystemExit`` raised by argparse (``--help``: 0, usage error: 2) becomes the return value,
    and a :data:`USER_ERRORS` exception becomes ``error: <message>`` on stderr and status 1.
    """

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except USER_ERRORS as exc:
            print(f"error: {_one_paragraph(exc)}", file=sys.stderr)
            return 1

    return wrapper


def _one_paragraph(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename:
        text = f"no such file or directory: {exc.filename}"
    return " ".join(text.split())


def parse_assignments(items: list[str], option: str) -> dict[str, Any]:
    """``["a=1", "b=[3,7]", "c=x"]`` -> ``{"a": 1, "b": (3, 7), "c": "x"}`` (values read as JSON
    where they parse, lists become tuples, anything else stays a string)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} must look like name=value. Got {item!r} instead.")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def parse_settings(cls: type, pairs: list[str], option: str = "--set") -> dict[str, Any]:
    """``["epochs=3", "dim=32"]`` -> constructor keywords of ``cls``, typed by its defaults.

    Raises
    ------
    ValueError
        Unknown parameter names (the known ones are listed) or values of the wrong type.
    """
    params = inspect.signature(cls).parameters
    known = {name: p.default for name, p in params.items()}
    out: dict[str, Any] = {}
    for name, text in _pairs(pairs, option):
        if name not in known:
            raise ValueError(f"{option} {name}: {cls.__name__} has no parameter {name!r}; known: {sorted(known)}.")
        out[name] = _typed_like(known[name], text, f"{option} {name}")
    return out


def _pairs(pairs: list[str], option: str) -> list[tuple[str, str]]:
    out = []
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"{option} must look like name=value. Got {pair!r} instead.")
        out.append((name, text))
    return out


def _typed_like(default: Any, text: str, name: str) -> Any:
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(type(default[0])(v) if default else v for v in text.split(","))
        if default is None:
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return text
        return text
    except ValueError:
        raise ValueError(f"{name} must be a {type(default).__name__}. Got {text!r} instead.") from None


def write_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as Parquet when ``path`` ends in ``.parquet``, else CSV; parents are created."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    return out
