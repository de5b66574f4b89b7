"""The README's Python snippets run as written, in order, and print what their comments say."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_snippets_run_and_print_what_they_say(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    drawing = [b for b in blocks if ".render(" in b or "mg.explore(" in b]  # need dot: below
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            if block not in drawing:
                exec(compile(block, str(README), "exec"), namespace)
    # a printing line's comment starts with what it prints, up to a colon: "# <Sum>: the op"
    promised = [comment.split(":")[0] for b in blocks if b not in drawing
                for comment in re.findall(r"^print\(.*\)\s+# (.*)$", b, re.M)]
    assert out.getvalue().splitlines() == promised
    assert promised[-1] == "(7, 2, 10)"  # the cell template ran, stacked and bidirectional
    assert len(drawing) == 2


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="mg.explore needs Graphviz's `dot`, which is not on PATH")
def test_the_readmes_explorer_snippet_writes_one_page(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (block,) = [b for b in blocks if "mg.explore(" in b]  # (the drawing: tests/test_viz.py)
    monkeypatch.chdir(tmp_path)
    exec(compile("import minigrad as mg\n" + block, str(README), "exec"), {})
    page = (tmp_path / "lstm.html").read_text()
    assert page.count("<svg") >= 2 and "explorer-data" in page and "https://" not in page


def readme_step():
    """The README's compiled LSTM cell step, run as its snippet does: the compiled step."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (snippet,) = [b for b in blocks if "step = mg.compile(cell)" in b]
    namespace: dict = {}
    exec(compile("import minigrad as mg\n" + snippet, str(README), "exec"), namespace)
    return namespace["step"]


def unhashed(text: str) -> str:
    """``text`` with the hash that names each fused kernel left out (it follows the kernel's
    generated source, which the listings do not show) and trailing spaces dropped."""
    return "\n".join(line.rstrip() for line in re.sub(r"fused_[0-9a-f]{10}", "fused_#",
                                                       text).strip().splitlines())


def test_the_readmes_program_listings_are_what_the_compiler_prints_now():
    listings = re.findall(r"```text\n(.*?)```", README.read_text(), re.S)
    printed, code = [b for b in listings if b.startswith(("-- forward", "def program"))]
    forward = readme_step().traces[0].forward
    assert unhashed(printed) == unhashed(f"-- forward, after the passes:\n{forward}"), (
        "README.md's listing of step.print() differs from what it prints now: paste it again")
    assert unhashed(code) == unhashed(forward.code), (
        "README.md's listing of step.traces[0].forward.code differs from the code now: paste "
        "it again")
