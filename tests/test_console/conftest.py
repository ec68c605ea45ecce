"""A real headless Chromium (Debian's chromium + chromium-driver) driven by selenium, one per test."""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"
# Without the background-networking flags Chromium keeps trying to reach Google's services on a closed network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


def _missing_browser() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    return f"{', '.join(missing)} absent: `make test` installs chromium and chromium-driver" if missing else None


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Chromium with a fresh profile; fails the test if the page logged a script or CSP error."""
    reason = _missing_browser()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI runs `make test`, which installs the browser: its absence is a failure
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="dprime-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
            assert_no_page_errors(driver)
        finally:
            driver.quit()


def assert_no_page_errors(driver: webdriver.Chrome) -> None:
    """No uncaught script error and no Content-Security-Policy violation was logged by the page."""
    errors = [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]  # 4xx answers the test expects
    ]
    assert not errors, errors


def screenshot(driver: webdriver.Chrome, name: str, full_page: bool = True) -> Path:
    """The whole page (or only the window) as test-output/console/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if not full_page:
        driver.save_screenshot(str(path))
        return path
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
