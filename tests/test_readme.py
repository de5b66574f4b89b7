"""The README's Python snippets run as written, in order, and print what their comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_snippets_run_and_print_what_they_say(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    drawing = [b for b in blocks if ".render(" in b]  # tests/test_viz.py renders that one
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
    assert len(drawing) == 1
