"""The experiment readout: :func:`build_readout` gathers every number as a JSON-ready dict,
:func:`render` formats it as text, Markdown, HTML (with plots) or JSON; the command line is
``python -m eval.report LOGS`` (``eval/report/__main__.py``).
"""
from __future__ import annotations

from eval.report._build import build_readout
from eval.report._render import FORMATS, render

__all__ = ["FORMATS", "build_readout", "render"]
