"""The HTML readout in a real browser: headless Chromium renders it to PNG (one render).

Checks: no console message, the verdict box first, every plot present as an inline SVG with its
id, title and drawing, and a screenshot that is not blank. Chromium is Debian's ``chromium``
package (``.ci/run`` installs it when missing); without it the test fails and says so rather
than skipping. ``READOUT_SCREENSHOT=docs/readout.png pytest tests/eval/test_report_browser.py``
also copies the screenshot there (the README's picture).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from eval.report import build_readout, render
from tests.eval.test_report import world, world_recall  # noqa: F401  (module-scoped fixtures)

WIDTH, HEIGHT = 1200, 3000
PLOTS = ("plot-lift-treatment", "plot-daily-treatment", "plot-segments-treatment", "plot-reliability",
         "plot-recall")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed to test the HTML readout in a browser and was not found: "
                "install Debian's package (apt-get install -y chromium; .ci/run does it when missing).")


@pytest.fixture(scope="module")
def rendered(world, world_recall, tmp_path_factory):  # noqa: F811
    """The fixture world's HTML readout (logs, recall candidates, device segments) in Chromium."""
    logs, samples = world
    readout = build_readout(logs, samples, candidates={"logged": world_recall}, segment="device")
    out = tmp_path_factory.mktemp("browser")
    page = out / "readout.html"
    page.write_text(render(readout, "html"))
    png = out / "readout.png"
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={out / 'profile'}", "--enable-logging=stderr", "--v=0", "--dump-dom",
         f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if os.environ.get("READOUT_SCREENSHOT"):
        target = Path(os.environ["READOUT_SCREENSHOT"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, target)
    return readout, proc.stdout, proc.stderr, png


def test_no_console_messages(rendered):
    _, _, stderr, _ = rendered
    # The page has no script: any console line (an error, a blocked resource) is a defect.
    console = [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == []


def test_every_plot_is_in_the_rendered_page(rendered):
    readout, dom, _, _ = rendered
    assert dom.index("class=\"verdict") < dom.index("<table")
    ids = re.findall(r'<svg id="(plot-[\w-]+)"', dom)
    assert tuple(ids) == PLOTS
    for plot_id in PLOTS:
        svg = re.search(rf'<svg id="{plot_id}".*?</svg>', dom, re.S).group(0)
        assert re.search(r"<title>[^<]+</title>", svg)
        assert svg.count("<path") >= 5  # axes, ticks and data
    assert readout["verdict"][0]["headline"] in dom


def test_screenshot_is_not_blank(rendered):
    from PIL import Image

    _, _, _, png = rendered
    with Image.open(png) as image:
        assert image.size == (WIDTH, HEIGHT)
        pixels = np.asarray(image.convert("RGB"), dtype=np.int64)
    non_white = np.any(pixels < 245, axis=-1)
    assert non_white.mean() > 0.05
    colours = np.unique(pixels.reshape(-1, 3) @ np.array([65536, 256, 1]))
    assert colours.size > 100  # text, tables, plot lines and fills
    # The verdict box (#f8f9fa inconclusive, #e6f4ea win, #fce8e6 loss) sits near the top.
    top = pixels[:500].reshape(-1, 3)
    box = {(248, 249, 250), (230, 244, 234), (252, 232, 230)}
    assert any(tuple(c) in box for c in np.unique(top, axis=0))
