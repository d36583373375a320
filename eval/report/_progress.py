"""Numbered progress lines on stderr for the long steps of the readout."""
from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Steps"]


class Steps:
    """One line per long step on stderr ("[2/6] offline vs online AUC ... 0.4 s"); silent when quiet.

    Parameters
    ----------
    total : int
        Number of steps announced; the command line counts its own steps and the readout's
        in one sequence.
    quiet : bool
        Print nothing.
    """

    def __init__(self, total: int, quiet: bool) -> None:
        self.total = total
        self.quiet = quiet
        self.done = 0

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Announce step ``name``, run the ``with`` block, then print its duration."""
        self.done += 1
        start = time.perf_counter()
        if not self.quiet:
            print(f"[{self.done}/{self.total}] {name} ...", end="", file=sys.stderr, flush=True)
        try:
            yield
        except BaseException:
            # End the progress line so that the error message starts a line of its own.
            if not self.quiet:
                print(file=sys.stderr, flush=True)
            raise
        if not self.quiet:
            print(f" {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
