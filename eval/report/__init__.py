"""The experiment readout: :func:`build_readout` gathers every number as a JSON-ready dict,
:func:`render` formats it as text, Markdown, HTML (with plots) or JSON; the command line is
``python -m eval.report LOGS`` (``eval/report/__main__.py``).
"""
from __future__ import annotations

from eval.report._readout import FORMATS, build_readout, render

__all__ = ["FORMATS", "build_readout", "render"]
