"""Hypothesis profiles ('ci' is deterministic and bounded; 'dev', the local default, explores
more); every program mg.compile makes is checked before and after every pass; the `browser`
fixture (headless Chromium, tests/browser.py); and in CI a test that skips for want of PyTorch
or of Chromium counts as failed: the README's claims of matching PyTorch rest on those
comparisons, and the pages minigrad writes are tested only in a browser, so CI must run them."""

import os

import pytest
from hypothesis import HealthCheck, settings

from minigrad.compile import pipeline
from tests.browser import Browser, missing

pipeline.CHECK = True  # the checker of minigrad/compile/check.py, after every pass

CI = bool(os.environ.get("CI"))

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=25,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if CI else "dev"))


# What CI must have: a skip whose reason names one of these fails there, saying how to get it.
NEEDED_IN_CI = {
    "torch": "install the `parity` extra",
    "chromium": "install Debian's chromium and chromium-driver (.ci/run does) and selenium "
                "(the `dev` extra)",
}


def _fail_a_needed_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (CI and report.skipped):
        return
    for needed, how in NEEDED_IN_CI.items():
        if needed in str(report.longrepr):
            report.outcome = "failed"
            report.longrepr = (f"{report.nodeid} skipped for want of {needed} "
                               f"({report.longrepr}); CI must run it: {how}")
            return


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_a_needed_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_a_needed_skip_in_ci(outcome.get_result())


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium window 1200 px wide (``tests.browser.Browser``), shared by the tests
    that open pages; they skip, saying why, where Chromium, its driver or selenium is missing."""
    why = missing()
    if why:
        pytest.skip(why)
    b = Browser()
    yield b
    b.quit()
