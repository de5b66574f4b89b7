"""Hypothesis profiles ('ci' is deterministic and bounded; 'dev', the local default, explores
more); every program mg.compile makes is checked before and after every pass; and in CI a test
that skips for want of PyTorch counts as failed: the README's claims of matching PyTorch rest on
those comparisons, so CI must run them."""

import os

import pytest
from hypothesis import HealthCheck, settings

from minigrad.compile import pipeline

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


def _fail_a_torch_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if CI and report.skipped and "torch" in str(report.longrepr):
        report.outcome = "failed"
        report.longrepr = (
            f"{report.nodeid} skipped because PyTorch is missing ({report.longrepr}); "
            "CI must run the PyTorch comparisons: install the `parity` extra"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_a_torch_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_a_torch_skip_in_ci(outcome.get_result())
