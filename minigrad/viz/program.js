// The page that compiled.explore() writes: a compiled signature's programs as traced and after
// each step of the pipeline, with a slider across the steps. It runs after drawing.js.
// Python collected (see explore_program in explore.py):
//   stages[k]    {name, programs: [forward, backward] (indices into programs), counts}
//   programs[k]  an SVG of Program.draw, its listing, and what each node id is:
//                s3 a slot {kind, type, role}, i2 an instruction {kind, line, source, fused}
"use strict";

const slider = $("passes");
let which = 0; // 0: the forward program, 1: the backward one
let program = null; // the program shown

function show() {
  const s = DATA.stages[Number(slider.value)];
  if (s.programs[which] === null) which = 0; // no backward program: a function without grad
  program = DATA.programs[s.programs[which]];
  mount(program.svg);
  const [f, b] = s.counts;
  $("stage-name").textContent = `${Number(slider.value) + 1} / ${DATA.stages.length}: ` +
    `${s.name} \u00b7 forward ${f}` + (b === null ? "" : `, backward ${b}`) + " instructions";
  $("show-forward").classList.toggle("on", which === 0);
  $("show-backward").classList.toggle("on", which === 1);
  $("show-backward").disabled = s.programs[1] === null;
  showListing();
}

// The panel with nothing selected: the program as print() lists it.
function showListing() {
  const name = which === 0 ? "forward" : "backward";
  panel.innerHTML = `<h2>the ${name} program</h2><p class="meta">after ` +
    `${esc(DATA.stages[Number(slider.value)].name)}; click an instruction or a slot</p>` +
    `<p class="note">signature ${esc(DATA.signature)}</p>` +
    `<pre class="listing">${esc(program.listing)}</pre>`;
}

// An instruction: its line and, for a fused kernel, the ops it took in and its source.
function showNode(id) {
  const node = program.nodes[id];
  if (!node) return showListing();
  for (const g of svg.querySelectorAll("g.node")) {
    g.classList.toggle("selected", g.querySelector("title").textContent === id);
  }
  if (node.kind === "slot") {
    panel.innerHTML = `<h2>${esc(id)}</h2><p class="meta">${esc(node.type)} \u00b7 ` +
      `${esc(node.role)}</p>`;
    return;
  }
  const again = node.recomputed ? `<p class="note">recomputes forward values (remat)</p>` : "";
  const fused = node.fused.length ? `<h3>fused from</h3><pre class="listing">` +
    `${esc(node.fused.join("\n"))}</pre>` : "";
  const source = node.source ? `<h3>generated source</h3><pre class="source">` +
    `${esc(node.source)}</pre>` : "";
  panel.innerHTML = `<h2 class="instr">${esc(node.line)}</h2>${again}${fused}${source}`;
}

// Graphviz writes each node as a <g class="node"> whose <title> is its id.
stage.addEventListener("click", (e) => {
  if (dragged) return;
  const g = e.target.closest("g.node");
  if (g) showNode(g.querySelector("title").textContent);
});
slider.max = DATA.stages.length - 1;
slider.addEventListener("input", show);
$("show-forward").addEventListener("click", () => { which = 0; show(); });
$("show-backward").addEventListener("click", () => { which = 1; show(); });
document.addEventListener("keydown", (e) => { // the arrows move the slider
  if (e.target === slider || !["ArrowLeft", "ArrowRight"].includes(e.key)) return;
  slider.value = Number(slider.value) + (e.key === "ArrowRight" ? 1 : -1);
  show();
});
slider.value = DATA.stages.length - 1; // as the call runs it
show();
