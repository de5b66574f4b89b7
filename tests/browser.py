"""Headless Chromium for testing the pages that minigrad writes (``mg.explore``), driven by
Selenium: the `browser` fixture of conftest.py gives one ``Browser`` to every test that asks.

The browser and its driver are Debian's (``apt-get install chromium chromium-driver``; .ci/run
installs them), at fixed paths, so that Selenium Manager never downloads either. Without them,
or without selenium, the tests that need them skip and say so; in CI such a skip fails."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH, HEIGHT = 1200, 800


def missing() -> str:
    """Why the browser tests cannot run here ('' when they can). Each reason names chromium,
    which is what tells conftest.py's CI rule that CI must have it."""
    if importlib.util.find_spec("selenium") is None:
        return "needs selenium to drive chromium (pip install selenium; the `dev` extra has it)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return (f"needs Debian's chromium and chromium-driver: {path} is missing "
                    "(apt-get install chromium chromium-driver)")
    return ""


class Browser:
    """One headless Chromium window, ``WIDTH`` px wide, that logs its console and its network
    requests (read them with ``console()`` and ``requests()`` after ``open()``)."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--window-size={WIDTH},{HEIGHT}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                                       options=options)

    def open(self, path: Path) -> None:
        """Load a page from a file; the logs then hold only what this page did."""
        self.driver.get("about:blank")
        self.console()
        self.requests()
        self.driver.get(path.resolve().as_uri())

    def console(self) -> list[dict]:
        """The console messages since the last call: dicts with ``level`` and ``message``."""
        return self.driver.get_log("browser")

    def requests(self) -> list[str]:
        """The URLs of the requests the browser sent since the last call."""
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls

    def js(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body: ``return ...``, with ``arguments``) in the page."""
        return self.driver.execute_script(script, *args)

    def find(self, css: str) -> Any:
        """The first element that matches a CSS selector."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def click(self, css: str) -> None:
        self.find(css).click()

    def screenshot(self, path: Path) -> int:
        """Save what the window shows as a PNG; returns the image's width in pixels."""
        path.parent.mkdir(parents=True, exist_ok=True)
        png = self.driver.get_screenshot_as_png()
        path.write_bytes(png)
        return struct.unpack(">I", png[16:20])[0]  # the IHDR chunk: width, then height

    def quit(self) -> None:
        self.driver.quit()
