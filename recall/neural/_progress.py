"""A dependency-free progress line for training loops."""
from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """A dependency-free progress line on stderr (silent unless ``verbose``)."""

    def __init__(self, total: int, desc: str, verbose: bool) -> None:
        self.total, self.desc, self.verbose = max(int(total), 1), desc, verbose
        self.done, self.start, self.last = 0, time.monotonic(), 0.0

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        now = time.monotonic()
        if not self.verbose or (now - self.last < 0.2 and self.done < self.total):
            return
        self.last = now
        width = 24
        filled = int(width * self.done / self.total)
        sys.stderr.write(f"\r{self.desc} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                         f"{now - self.start:.1f}s {note}")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()
