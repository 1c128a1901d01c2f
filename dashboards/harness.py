"""Serve the dashboard in this process and drive it in headless Chromium: the browser tests and the speed
benchmark measure pages the same way. Needs selenium and Chromium with its driver (Debian: ``chromium``
and ``chromium-driver``), which run offline.

A page counts as interactive when its main element is in the page, no Dash callback is pending and every
graph on it is drawn (:data:`READY`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from dash import Dash
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000")
"""Flags for a closed network: no update checks, sync or QUIC; a fresh profile is added per browser."""
READY = """
const graphs = [...document.querySelectorAll('.dash-graph')];
return document.querySelector(arguments[0]) !== null
    && document.querySelectorAll('[data-dash-is-loading="true"]').length === 0
    && graphs.every(g => g.querySelector('.main-svg') !== null);
"""


def browser_missing() -> str:
    """Why no headless browser can be started here ('' when one can)."""
    from importlib.util import find_spec

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        return f"missing {', '.join(missing)}: install chromium and chromium-driver (apt-get install chromium " \
               "chromium-driver)"
    return "" if find_spec("selenium") else "selenium is not installed: pip install selenium"


@contextmanager
def serve(app: "Dash") -> Iterator[str]:
    """The app on a free port of 127.0.0.1 in a thread of this process; yields its base URL."""
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator["WebDriver"]:
    """Headless Chromium with a fresh profile, driven through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="yuetwin-chromium-")
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: "WebDriver", condition, timeout: float = 120, poll: float = 0.05):
    """``condition(driver)`` once it is truthy; elements missing or replaced meanwhile (Dash re-renders)
    count as not yet."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=poll,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(condition)


def open_page(driver: "WebDriver", url: str, ready: str, timeout: float = 120) -> float:
    """Load ``url``, wait until it is interactive (``ready``: a CSS selector of its main element) and
    return the seconds from the request to then."""
    start = time.perf_counter()
    driver.get(url)
    wait_for(driver, lambda d: d.execute_script(READY, ready), timeout)
    return time.perf_counter() - start


def screenshot(driver: "WebDriver", path: Path, width: int = 1400) -> None:
    """A PNG of the whole page (the window is stretched to the page's height, then restored)."""
    for _ in range(2):  # graphs reflow to the new size once
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, max(1000, min(height, 8000)))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(width, 1000)
