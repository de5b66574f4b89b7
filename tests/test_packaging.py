"""The installed package and the checkout: the wheel holds only `minigrad` (the top-level models/
comes as `minigrad.models`), so a user's own `models` module neither breaks minigrad nor is
shadowed by it; and every way of getting minigrad (wheel, sdist, editable install, a checkout
without symlinks) imports `minigrad.models` as one copy of each class."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
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

# Imports every model module, checks that each file was loaded once (one copy of each class)
# from where it should be, and says whether minigrad's finder for a checkout's models/ is on
# (only where the package has no models/ of its own) and what a bare `import models` does.
ONE_COPY = """
import os, pkgutil, sys
import minigrad as mg
import minigrad.models as m
from minigrad.models import LSTM
from minigrad.models.recurrent import LSTM as LSTM_again

assert os.path.dirname(mg.__file__) == {package!r}, mg.__file__
assert os.path.dirname(m.__file__) == {models!r}, m.__file__
for info in pkgutil.iter_modules(m.__path__):
    __import__("minigrad.models." + info.name)
try:
    import models
    bare = "the same module" if models is m else "another copy: " + models.__file__
except ImportError as error:
    bare = str(error)
loaded = [os.path.realpath(mod.__file__) for mod in list(sys.modules.values())
          if getattr(mod, "__file__", None) and os.path.realpath(os.path.dirname(mod.__file__))
          == os.path.realpath(m.__path__[0])]
assert len(loaded) == len(set(loaded)) == 1 + len(list(pkgutil.iter_modules(m.__path__))), loaded
assert LSTM is LSTM_again is m.LSTM
out, (h, c) = LSTM(3, 5)(mg.randn(4, 2, 3))
out.sum().backward()
finder = any(type(f).__name__ == "_CheckoutModels" for f in sys.meta_path)
print(tuple(out.shape), "|", finder, "|", bare)
"""

CHECKOUT_ONLY = "import the models as minigrad.models"  # models/__init__.py's ImportError


def run(*command: str | Path, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs ``command``, with this Python's environment less PYTHONPATH unless ``env`` is given."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def need_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of minigrad")


def need_hatchling() -> None:
    """The build tests run offline, with the build backend from this environment."""
    if importlib.util.find_spec("hatchling") is None:
        pytest.fail("hatchling is missing: pip install -e '.[dev]' installs it")


def pip(*args: str | Path, python: str | Path = sys.executable) -> None:
    """pip offline: no download, the build backend (hatchling) from this environment."""
    need_hatchling()
    run(python, "-m", "pip", *args, "--no-deps", "--no-build-isolation", "--no-index", "-q",
        "--disable-pip-version-check")


def check_one_copy(python: str | Path, cwd: Path, package: Path, models: Path,
                   env: dict[str, str] | None = None) -> tuple[bool, str]:
    """Runs ONE_COPY with ``python`` in ``cwd``; returns whether the finder is on, and what a
    bare `import models` did."""
    script = ONE_COPY.format(package=str(package), models=str(models))
    out = run(python, "-c", script, cwd=cwd, env=env).stdout.strip()
    shape, finder, bare = out.split(" | ", 2)
    assert shape == "(4, 2, 5)"
    return finder == "True", bare


def snapshot(dest: Path) -> Path:
    """The working tree as it would be committed (tracked and new unignored files; deleted ones
    left out), links kept as links: a stand-in for a fresh clone of the branch."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source, target = ROOT / name, dest / name
        if not source.is_symlink() and not source.is_file():
            continue  # deleted in the working tree, or a submodule
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return dest


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A clone with ``core.symlinks=false`` (git's default on Windows: a link becomes a text
    file) of a repository that holds the working tree's current state."""
    need_git()
    base = tmp_path_factory.mktemp("checkout")
    repo = snapshot(base / "repo")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com",
           "-c", "commit.gpgsign=false"]
    run(*git, "init", "-q", cwd=repo)
    run(*git, "add", "-A", cwd=repo)
    run(*git, "commit", "-q", "--no-verify", "-m", "snapshot", cwd=repo)
    run("git", "-c", "core.symlinks=false", "clone", "--quiet", repo, base / "clone")
    return base / "clone"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip("wheel", "-w", out, ROOT)
    (path,) = out.glob("minigrad-*.whl")
    return path


def test_the_repository_tracks_no_symlinks():
    """A link would be a text file in a checkout on Windows (minigrad/models was one)."""
    need_git()
    staged = run("git", "ls-files", "-s", cwd=ROOT).stdout.splitlines()
    assert [line for line in staged if line.startswith("120000")] == []


def test_the_wheel_puts_only_minigrad_on_the_path(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"minigrad"}
    assert "minigrad/models/recurrent.py" in names
    assert "minigrad/data/vocab.py" in names
    assert "minigrad/py.typed" in names
    pages = ("drawing.js", "explorer.js", "program.js", "explorer.css")  # the explorers' pages
    assert {f"minigrad/viz/{f}" for f in pages} <= set(names)
    models = {f"minigrad/models/{p.name}" for p in (ROOT / "models").glob("*.py")}
    assert "minigrad/models/__init__.py" in models and models <= set(names)


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


def test_the_wheel_imports_one_copy_of_the_models_from_inside_the_package(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    finder, bare = check_one_copy(sys.executable, tmp_path, site / "minigrad",
                                  site / "minigrad" / "models", env=env)
    assert not finder
    # no `models` is installed (this Python may have an editable install of the checkout, whose
    # models/ refuses the name)
    assert bare == "No module named 'models'" or CHECKOUT_ONLY in bare


def test_an_install_of_the_sdist_has_the_models_inside_the_package(tmp_path):
    need_hatchling()
    run(sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", tmp_path / "dist",
        cwd=ROOT)
    (sdist,) = (tmp_path / "dist").glob("minigrad-*.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    assert {"models/recurrent.py", "minigrad/__init__.py", "pyproject.toml"} <= names
    site = tmp_path / "site"
    pip("install", "--target", site, sdist)
    assert sorted(p.name for p in site.iterdir() if ".dist-info" not in p.name) == ["minigrad"]
    assert all((site / "minigrad" / "viz" / f).is_file()
               for f in ("drawing.js", "explorer.js", "program.js", "explorer.css"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    finder, bare = check_one_copy(sys.executable, tmp_path, site / "minigrad",
                                  site / "minigrad" / "models", env=env)
    assert not finder
    assert bare == "No module named 'models'" or CHECKOUT_ONLY in bare


def test_an_editable_install_imports_the_checkouts_models(checkout, tmp_path):
    venv = tmp_path / "venv"
    # --without-pip: this Python's pip and hatchling come in with its site-packages
    run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    pip("install", "-e", checkout, python=python)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
                .stdout.strip())
    (pth,) = site.glob("*minigrad*.pth")  # in the venv: the install put the checkout on its path
    assert Path(pth.read_text().strip()) == checkout
    assert not (site / "minigrad").exists()  # and copied nothing that could go stale
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    finder, bare = check_one_copy(python, elsewhere, checkout / "minigrad", checkout / "models")
    assert finder and CHECKOUT_ONLY in bare  # the checkout is on the path: models/ says no
    (elsewhere / "models.py").write_text('OWN = "the user\'s"\n')  # a user's own still wins
    (elsewhere / "main.py").write_text(USER_SCRIPT.format(site=str(checkout)))
    assert run(python, "main.py", cwd=elsewhere).stdout.strip() == "(4, 2, 5) the user's"


def test_a_checkout_without_symlinks_imports_minigrad_models_from_its_root(checkout):
    assert not (checkout / "minigrad" / "models").exists()
    finder, bare = check_one_copy(sys.executable, checkout, checkout / "minigrad",
                                  checkout / "models")
    assert finder and CHECKOUT_ONLY in bare  # `import models` there would be a second copy: refused
