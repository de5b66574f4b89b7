"""compiled.explore(): a compiled signature's programs after each pass of the pipeline, as one
page to step through in a browser (``minigrad/viz/explore.py`` makes the page, ``program.js``
shows it). This is where a student watches fusion happen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from minigrad.compile.program import Program, type_text
from minigrad.viz.explore import Explorer, dot_svgs, inline_svg

if TYPE_CHECKING:
    from minigrad.compile.compiled import Specialization


def explore_program(spec: Specialization) -> Explorer:
    """A page that shows one compiled signature's programs as traced and after each step of
    the pipeline (``Specialization.stages()``), with a slider across the steps: the forward or
    the backward program as ``Program.draw`` draws it, and, on a click, an instruction's line
    and a fused kernel's generated source, or a slot's type. ``compiled.explore()`` makes it.
    A program that a step leaves unchanged is drawn once."""
    drawn: dict[str, int] = {}  # a program's listing -> the index of its drawing
    programs: list[tuple[Program, str]] = []  # each program drawn, with its listing
    stages = []
    for name, forward, backward in spec.stages():
        shown = []
        for program in (forward, backward):
            listing = None if program is None else str(program)
            if listing is not None and listing not in drawn:
                drawn[listing] = len(programs)
                programs.append((program, listing))
            shown.append(drawn.get(listing))
        stages.append({"name": name, "programs": shown,
                       "counts": [len(forward.instrs),
                                  None if backward is None else len(backward.instrs)]})
    svgs = dot_svgs([p.draw().source for p, _ in programs], None)
    return Explorer({"kind": "program", "signature": spec.signature, "stages": stages,
                     "programs": [_program(p, listing, svg)
                                  for (p, listing), (svg, _) in zip(programs, svgs)]})


def _program(program: Program, listing: str, svg: str | None) -> dict:
    """One program for the page: its drawing and listing, and what each node of it is (node ids
    as ``Program.draw`` gives them: ``s3`` a slot, ``i2`` an instruction)."""
    nodes: dict[str, dict] = {}
    for s, meta in program.meta.items():
        role = ("input" if s in program.inputs else "constant" if s in program.constants
                else "output" if s in program.outputs else "value")
        nodes[f"s{s}"] = {"kind": "slot", "type": type_text(meta), "role": role}
    for k, ins in enumerate(program.instrs):
        nodes[f"i{k}"] = {"kind": "instr", "line": ins.text(), "source": ins.source,
                          "fused": [f.text() for f in ins.fused],
                          "recomputed": ins.recomputed or any(f.recomputed for f in ins.fused)}
    return {"svg": inline_svg(svg) if svg else "", "listing": listing, "nodes": nodes}
