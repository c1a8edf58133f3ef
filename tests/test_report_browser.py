"""End-to-end: a real browser (headless Chromium) renders the training report, plots included."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.image import imread

from classifier.decision import choose_thresholds
from classifier.report import COLOURS, write_report
from tests.classifier.test_report import Page, backtest_result, decode_png, gate_result, synthetic

pytestmark = pytest.mark.e2e
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1280, 4000


def chromium() -> str:
    """The headless browser's path, or a skip that says why there is none and how to get one."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    if shutil.which("apt-get"):
        pytest.skip("headless Chromium not found: ./run test installs the Debian package `chromium` "
                    "with apt-get when run as root or with password-less sudo (scripts/bootstrap.sh); "
                    "or run `apt-get install chromium`")
    pytest.skip(f"headless Chromium not found ({', '.join(CHROMIUM_NAMES)}) and no apt-get to install it: "
                f"install Chromium by hand to run the browser test of the training report")


def screenshot(browser: str, page, out, profile) -> np.ndarray:
    """Load `page` in headless Chromium and return the screenshot's RGB pixels (0..1)."""
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
         f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={out}", page.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert out.is_file(), f"Chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return imread(out)[..., :3]


def near(pixels: np.ndarray, colour: str, tolerance: float = 0.08) -> np.ndarray:
    """Mask of pixels within `tolerance` of a #rrggbb colour on every channel."""
    rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return (np.abs(pixels - rgb) <= tolerance).all(axis=-1)


def test_the_report_renders_in_a_real_browser(tmp_path):
    browser = chromium()
    y, p = synthetic(2000)
    report = write_report(tmp_path, version="20261126-000000-bbbbbbbb", manifest={"parent": None},
                          y_true=y, probabilities=p, thresholds=choose_thresholds(y, p),
                          gate=gate_result(), backtest=backtest_result(40))
    for tag, src in Page(report.read_text(encoding="utf-8")).urls:
        if tag == "img":
            assert decode_png(src).shape[1] > 600

    pixels = screenshot(browser, report, tmp_path / "report.png", tmp_path / "profile")
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    ink = (pixels < 0.9).any(axis=-1)
    assert ink.mean() > 0.02, "the page looks blank"
    # The label colours are used only inside the plots: seeing each of them means the embedded
    # images were decoded and painted, not shown as broken-image icons.
    for label, colour in COLOURS.items():
        assert near(pixels, colour).sum() > 300, f"no {label} curve or histogram painted"
    spam_rows = np.flatnonzero(near(pixels, COLOURS["spam"]).any(axis=1))
    assert spam_rows.max() - spam_rows.min() > 800, "the precision-recall and histogram plots should both show"
    # text and tables fill the page above the first plot and between the plots
    first_plot = spam_rows.min()
    assert ink[:first_plot].mean() > 0.01
