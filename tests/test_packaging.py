"""The installed package: the wheel holds only `minigrad` (the models come as `minigrad.models`),
so a user's own `models` module neither breaks minigrad nor is shadowed by it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

USER_SCRIPT = """
import models                      # the user's own module, next to the script
import minigrad as mg
from minigrad.models import LSTM

assert models.OWN == "the user's", models.__file__
assert mg.__file__.startswith({site!r}), mg.__file__
out, (h, c) = LSTM(3, 5)(mg.randn(4, 2, 3))
print(out.shape, models.OWN)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    (path,) = out.glob("minigrad-*.whl")
    return path


def test_the_wheel_puts_only_minigrad_on_the_path(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"minigrad"}
    assert "minigrad/models/recurrent.py" in names
    assert "minigrad/data/vocab.py" in names
    assert "minigrad/py.typed" in names


def test_a_users_own_models_module_and_minigrad_models_live_side_by_side(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    project = tmp_path / "project"
    project.mkdir()
    (project / "models.py").write_text('OWN = "the user\'s"\n')
    (project / "main.py").write_text(USER_SCRIPT.format(site=str(site)))
    # minigrad from the wheel (PYTHONPATH comes before site-packages), numpy from this Python
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "main.py"], cwd=project, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(4, 2, 5) the user's"
