"""A real browser for the status page tests: Debian's headless Chromium, driven through its
chromedriver by Selenium (no browser or driver download). Missing Chromium skips locally and fails
in CI (``scripts/setup-system.sh`` installs both)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from testsupport import REPO, unavailable

ARTIFACTS = REPO / "tests" / "artifacts" / "status-page"
DOCS = REPO / "docs"
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


@contextmanager
def chromium(width: int = 1280, height: int = 860, javascript: bool = True) -> Iterator[Any]:
    binary = next((path for path in map(shutil.which, CHROMIUM) if path), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        unavailable("headless Chromium and chromedriver are not installed (bash scripts/setup-system.sh)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (bash scripts/setup-python.sh)")
        raise
    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", "--hide-scrollbars", f"--window-size={width},{height}"):
        options.add_argument(arg)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(executable_path=str(driver_path)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str, docs: str | None = None, scroll_to: str = "", high: int = 720) -> Path:
    """Keep a screenshot of the page as a test artifact (tests/artifacts/status-page/NAME.png); with
    ``docs``, also as the README's picture docs/DOCS.png: 1024 wide (or the window's width when
    narrower), at most ``high`` high (the page's own height when shorter), from the element
    ``scroll_to`` down when given, and under 100 kB."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    if docs is not None:
        DOCS.mkdir(exist_ok=True)
        size = driver.get_window_size()
        width = min(size["width"], 1024)
        driver.set_window_size(width, 900)
        chrome = 900 - int(driver.execute_script("return innerHeight"))  # the window's own bars
        height = int(driver.execute_script("return Math.ceil(document.body.getBoundingClientRect().bottom) + 16"))
        driver.set_window_size(width, min(high, height) + chrome)
        if scroll_to:
            driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", scroll_to)
        picture = DOCS / f"{docs}.png"
        driver.save_screenshot(str(picture))
        driver.execute_script("scrollTo(0, 0)")
        driver.set_window_size(size["width"], size["height"])
        assert picture.stat().st_size < 100_000, f"{picture} is {picture.stat().st_size} bytes: keep it under 100 kB"
    return path


def wait_page(driver: Any, what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    """Wait until ``check()`` holds on the page as it is (never reloaded here)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(Exception):  # an element replaced between two reads: look again
            if check():
                return
        time.sleep(0.25)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "timeout.png"))
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; page: {driver.page_source[:3000]}")


def click_and_wait(driver: Any, element: Any, timeout: float = 30) -> None:
    """Click something that loads a new page (a link, a form's button) and wait until it has."""
    from selenium.webdriver.support.wait import WebDriverWait

    element.click()
    WebDriverWait(driver, timeout).until(lambda _: _left(element))
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _left(element: Any) -> bool:
    """Whether the page that held ``element`` is gone. Chromium answers a node of an unloaded page
    with a stale-element error or, while the new page is being built, with "Node with given id does
    not belong to the document" (a plain WebDriverException): both mean it is gone."""
    from selenium.common.exceptions import WebDriverException

    try:
        element.is_enabled()
    except WebDriverException:  # StaleElementReferenceException is one of these
        return True
    return False
