"""The ltr package itself: lazy public names (``python -m ltr.train`` must not import twice)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ltr

ROOT = Path(__file__).resolve().parents[2]


def test_all_matches_the_lazy_exports():
    assert ltr.__all__ == sorted(ltr._EXPORTS)
    assert dir(ltr) == ltr.__all__


def test_import_ltr_loads_no_submodule():
    code = "import sys, ltr; print(sorted(m for m in sys.modules if m.split('.')[0] == 'ltr'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['ltr', 'ltr._lazy']"
