// The page that mg.explore writes: draw_graph's SVG, made to click, fold, search and step
// through. Python collected everything into the JSON of #explorer-data (see explore.py):
//   tensors[k]  name, shape, dtype, the op that made it, stats of its data and its gradient
//   ops[k]      in forward order: name, scope, rule, inputs and outputs, what it keeps
//   backward    steps: [{op, gradIn, gradOut}] in the engine's order, or why there are none
//   layouts[k]  an SVG, what each node id is ({kind, index, place}), each cluster's scope
//   leftOut     [label, why] of each layout that dot could not make in time
// It runs after drawing.js, which shows an SVG and pans and zooms it.
"use strict";

let layout = null; // the layout shown
let nodes = {}; // node id -> its <g>
let clusters = {}; // cluster id (cluster_3) -> its <g>
let edges = []; // {el, tail, head} for every edge
let tensorNode = {}; // tensor index -> node id in this layout
let folded = new Set(); // cluster ids folded in place
let foldAt = new Map(); // a node's place (a scope) -> the folded cluster over it, or null
let covers = new Map(); // folded cluster id -> the box drawn over it
let clusterOf = new Map(); // scope -> its cluster's id
let selected = null; // the node id selected, if any

// ---------------------------------------------------------------------------------------------
// numbers and small pieces of HTML

function bytes(n) {
  if (n >= 2 ** 20) return (n / 2 ** 20).toFixed(1) + " MiB";
  if (n >= 2 ** 10) return (n / 2 ** 10).toFixed(1) + " KiB";
  return n + " B";
}

function tensorLabel(k) {
  const t = DATA.tensors[k];
  return t.name === null ? "unnamed tensor" : t.name;
}

// A link in the panel to a tensor or an op: clicking it selects that node.
function link(kind, k) {
  const text = kind === "tensor" ? tensorLabel(k) : DATA.ops[k].name;
  return `<span class="link" data-${kind}="${k}">${esc(text)}</span>`;
}

// A table of statistics, and the histogram of the finite values as bars.
function statsHTML(s, of) {
  if (s === null) return `<p class="note">not numbers</p>`;
  const pairs = [["min", s.min, "max", s.max], ["mean", s.mean, "std", s.std],
    ["norm", s.norm, "size", s.size], ["zeros", s.zeros, "non-finite", s.nonfinite]];
  const cell = (name, v) => `<th>${name}</th><td data-stat="${name}">${num(v)}</td>`;
  const table = pairs.map(([a, va, b, vb]) => `<tr>${cell(a, va)}${cell(b, vb)}</tr>`).join("");
  const note = s.nonfinite ? `<p class="note">statistics of the finite values</p>` : "";
  return `<table class="stats" data-of="${of}">${table}</table>${note}` +
    (s.hist ? histogram(s, of) : "");
}

function histogram(s, of) {
  const w = 280, h = 44, bar = w / s.hist.length, top = Math.max(...s.hist);
  const bars = s.hist.map((c, i) => {
    const bh = c ? Math.max(1, (c / top) * h) : 0;
    return `<rect x="${i * bar + 0.5}" y="${h - bh}" width="${bar - 1}" height="${bh}">` +
      `<title>${c}</title></rect>`;
  }).join("");
  return `<svg class="hist ${of}" width="${w}" height="${h + 14}" viewBox="0 0 ${w} ${h + 14}">` +
    `${bars}<text x="0" y="${h + 12}">${num(s.lo)}</text>` +
    `<text x="${w}" y="${h + 12}" text-anchor="end">${num(s.hi)}</text></svg>`;
}

// ---------------------------------------------------------------------------------------------
// the panel: what a tensor, an op, a box or a step is

function showTensor(k) {
  const t = DATA.tensors[k];
  const origin = t.maker !== null ? `made by ${link("op", t.maker)}` : t.leaf;
  const gradient = t.grad ? statsHTML(t.grad, "grad") +
    `<p class="note">${esc(DATA.backward.source)}</p>` : `<p class="note">none</p>`;
  panel.innerHTML = `<h2>${esc(tensorLabel(k))}</h2>` +
    `<p class="meta"><span class="shape">${esc(t.shape)}</span> \u00b7 ` +
    `<span class="dtype">${esc(t.dtype)}</span> \u00b7 ${origin}</p>` +
    `<h3>data</h3>${statsHTML(t.data, "data")}<h3>gradient</h3>${gradient}`;
}

// An op's name, scope and rule, then `extra` (a backward step's norms), then what it reads,
// makes and keeps.
function opHTML(k, extra = "") {
  const op = DATA.ops[k];
  const ends = (list) => list.map(([t, shape]) =>
    `<li>${t === null ? "(not drawn)" : link("tensor", t)} <span class="shape">${esc(shape)}` +
    `</span></li>`).join("");
  const saved = op.saved.map(([shape, n]) => `<li>${esc(shape)}, ${bytes(n)}</li>`).join("");
  const kept = op.freed ? "freed by backward" :
    `${op.arrays} array${op.arrays === 1 ? "" : "s"}, ${bytes(op.bytes)} new here ` +
    `<span class="note">(mg.memory_report counts an array at the first op holding it)</span>` +
    (saved ? `<br>saved by forward:<ul>${saved}</ul>` : "");
  return `<h2 class="op-name">${esc(op.name)}</h2>` +
    `<p class="meta op-scope">${esc(op.scope || "(no scope)")}</p>` +
    (op.rule ? `<p class="rule">${esc(op.rule)}</p>` : "") + extra +
    `<h3>reads</h3><ul class="reads">${ends(op.inputs)}</ul>` +
    `<h3>makes</h3><ul class="makes">${ends(op.outputs)}</ul>` +
    `<h3>kept for backward</h3><div class="kept">${kept}</div>`;
}

function showBox(node) {
  const counts = {};
  for (const k of node.ops) counts[DATA.ops[k].name] = (counts[DATA.ops[k].name] || 0) + 1;
  const list = Object.entries(counts).map(([name, n]) => `<li>${esc(name)} \u00d7 ${n}</li>`);
  panel.innerHTML = `<h2>${esc(node.scope)}</h2><p class="meta">${node.ops.length} ops, ` +
    `drawn as one box</p><ul>${list.join("")}</ul>`;
}

function showStep(which, i) {
  const s = steppers[which];
  const step = s.steps[i];
  const op = DATA.ops[step.op];
  let norms = "";
  if (which === "bwd") {
    const sent = op.inputs.map(([t, shape], j) =>
      `<li>${link("tensor", t)} <span class="shape">${esc(shape)}</span>: ` +
      `<b>${num(step.gradOut[j])}</b></li>`).join("");
    norms = `<h3>gradient norms</h3><p>arrived (per output): ` +
      `<b class="grad-in">${step.gradIn.map(num).join(", ")}</b></p>` +
      `<p>sent to each input (\u2013 where none is needed):</p><ul class="grad-out">${sent}</ul>`;
  }
  panel.innerHTML = `<p class="step-title">${which === "fwd" ? "forward" : "backward"} step ` +
    `${i + 1} / ${s.steps.length}</p>` + opHTML(step.op, norms);
}

function showIntro() {
  const b = DATA.backward;
  const notes = [b.unavailable ? `Backward stepper off: ${b.unavailable}.` : b.note,
    ...DATA.leftOut.map(([label, why]) => `Layout "${label}" left out (${why}).`)]
    .filter(Boolean);
  panel.innerHTML = `<h2>minigrad explorer</h2><p>${DATA.ops.length} ops, ` +
    `${DATA.tensors.length} tensors. Click a tensor or an op to see it; click a cluster's ` +
    `label to fold it. Drag to pan, wheel to zoom; step through forward and backward above ` +
    `(or with the arrow keys).</p>` + notes.map((n) => `<p class="note">${esc(n)}</p>`).join("");
}

panel.addEventListener("click", (event) => {
  const el = event.target.closest(".link");
  if (!el) return;
  if (el.dataset.tensor !== undefined) return selectTensor(Number(el.dataset.tensor));
  const k = Number(el.dataset.op);
  select(layout.opNodes[k], true);
  panel.innerHTML = opHTML(k); // the op itself, also where a box holds it
});

// ---------------------------------------------------------------------------------------------
// the drawing: load a layout

function load(next) {
  layout = next;
  mount(layout.svg);
  nodes = {};
  clusters = {};
  tensorNode = {};
  folded = new Set();
  foldAt = new Map();
  covers = new Map();
  clusterOf = new Map(Object.entries(layout.clusters).map(([id, [scope]]) => [scope, id]));
  selected = null; // node ids differ from layout to layout
  for (const g of svg.querySelectorAll("g.node")) nodes[g.querySelector("title").textContent] = g;
  for (const g of svg.querySelectorAll("g.cluster")) {
    clusters[g.querySelector("title").textContent] = g;
    g.querySelector("text").addEventListener("click", () => dragged || toggleFold(g));
  }
  edges = [...svg.querySelectorAll("g.edge")].map((el) => {
    const [tail, head] = el.querySelector("title").textContent.split("->");
    return {el, tail: tail.split(":")[0], head: head.split(":")[0]};
  });
  for (const [id, node] of Object.entries(layout.nodes)) {
    if (node.kind === "tensor") tensorNode[node.index] = id;
  }
  for (const button of $("layouts").querySelectorAll("button")) {
    button.classList.toggle("on", button.dataset.label === layout.label);
  }
}


// ---------------------------------------------------------------------------------------------
// selecting nodes, and marking them (selected, current step, visited, search match)

stage.addEventListener("click", (e) => {
  if (dragged) return;
  const cover = e.target.closest(".fold-cover");
  if (cover) return toggleFold(clusters[cover.dataset.cluster]);
  const g = e.target.closest("g.node");
  if (g) select(g.querySelector("title").textContent, false);
});

function select(id, centre) {
  const node = layout.nodes[id];
  if (!node) return; // the legend
  stopPlaying();
  mark("selected", [id]);
  selected = id;
  if (node.kind === "tensor") showTensor(node.index);
  else if (node.kind === "op") panel.innerHTML = opHTML(node.index);
  else showBox(node);
  if (centre) reveal(shown(id), false);
}

// A tensor from a link: its node if this layout draws it (not when it is inside a box).
function selectTensor(k) {
  if (tensorNode[k] !== undefined) select(tensorNode[k], true);
  else showTensor(k);
}

// What stands for a node on screen: the node, or the cover of a cluster folded over it.
function shown(id) {
  const fold = foldOver(layout.nodes[id].place);
  return fold ? svg.querySelector(`.fold-cover[data-cluster="${fold}"]`) : nodes[id];
}

// Give CSS class `cls` to exactly these nodes (or the folds that cover them).
function mark(cls, ids) {
  for (const el of svg.querySelectorAll("." + cls)) el.classList.remove(cls);
  for (const id of ids) shown(id).classList.add(cls);
}

// ---------------------------------------------------------------------------------------------
// folding a cluster in place: its nodes and inner edges hide under a box with its scope

const scopeOf = (cluster) => layout.clusters[cluster][0];

// The outermost folded cluster that holds a place (a scope path), or null: the first of the
// path's prefixes, a, a.b, a.b.c, whose cluster is folded. Remembered in foldAt until the folds
// change (many nodes share a place).
function foldOver(place) {
  if (!foldAt.has(place)) {
    const parts = place.split(".");
    let found = null;
    for (let k = 1; k <= parts.length && !found; k++) {
      const c = clusterOf.get(parts.slice(0, k).join("."));
      if (folded.has(c)) found = c;
    }
    foldAt.set(place, found);
  }
  return foldAt.get(place);
}

function toggleFold(g) {
  const id = g.querySelector("title").textContent;
  if (folded.has(id)) folded.delete(id);
  else folded.add(id);
  applyFolds();
}

// Show what the folds leave in view. Covers stay while their cluster stays folded: making one
// measures the drawing, which is slow in a large one, so the new ones are measured together.
function applyFolds() {
  foldAt = new Map();
  const fold = (id) => foldOver(layout.nodes[id].place);
  for (const id of Object.keys(layout.nodes)) nodes[id].style.display = fold(id) ? "none" : "";
  const outermost = [];
  for (const [id, g] of Object.entries(clusters)) {
    const outer = foldOver(scopeOf(id));
    g.style.display = outer && outer !== id ? "none" : "";
    if (outer === id) outermost.push(id);
  }
  for (const e of edges) { // an edge inside a fold hides; one that crosses its border stays
    const f = layout.nodes[e.tail] && fold(e.tail);
    e.el.style.display = f && f === fold(e.head) ? "none" : "";
  }
  for (const [id, c] of covers) {
    if (!outermost.includes(id)) {
      c.remove();
      covers.delete(id);
    }
  }
  const added = outermost.filter((id) => !covers.has(id));
  const boxes = added.map((id) => clusters[id].getBBox()); // all read, then all written
  added.forEach((id, k) => covers.set(id, cover(id, boxes[k])));
  for (const id of added) { // too long for its box: the scope's last name
    const text = covers.get(id).querySelector("text");
    const [scope, ops] = layout.clusters[id];
    if (text.getComputedTextLength() > boxes[added.indexOf(id)].width - 6) {
      text.textContent = `${scope.split(".").pop()} (${ops})`;
    }
  }
  restoreMarks();
}

// A box over a folded cluster, with its scope and count of ops; clicking it unfolds.
function cover(id, box) {
  const NS = svg.namespaceURI;
  const [scope, ops] = layout.clusters[id];
  const c = document.createElementNS(NS, "g");
  c.setAttribute("class", "fold-cover");
  c.dataset.cluster = id;
  const rect = document.createElementNS(NS, "rect");
  for (const [k, v] of Object.entries({x: box.x, y: box.y, width: box.width,
    height: box.height, rx: 6})) rect.setAttribute(k, v);
  const size = Math.max(8, Math.min(28, box.height / 4));
  const text = document.createElementNS(NS, "text");
  text.setAttribute("x", box.x + box.width / 2);
  text.setAttribute("y", box.y + box.height / 2 + size / 3);
  text.setAttribute("font-size", size);
  text.textContent = `${scope} (${ops} ops)`;
  const title = document.createElementNS(NS, "title");
  title.textContent = `${scope}: ${ops} ops, folded (click to unfold)`;
  c.append(rect, text, title);
  drawing.append(c);
  return c;
}

// ---------------------------------------------------------------------------------------------
// the steppers: forward in data-flow order, backward in the engine's order

const steppers = {
  fwd: {steps: DATA.ops.map((_, k) => ({op: k})), k: 0, timer: null},
  bwd: {steps: DATA.backward.steps, k: 0, timer: null},
};
let active = null; // the stepper whose steps are shown

function step(which, delta) {
  const s = steppers[which];
  s.k = Math.max(0, Math.min(s.steps.length, s.k + delta));
  active = which;
  restoreMarks();
  const current = s.k ? layout.opNodes[s.steps[s.k - 1].op] : null;
  if (current) {
    showStep(which, s.k - 1);
    reveal(shown(current), false);
  } else {
    showIntro();
  }
  counters();
}

// The marks of the active stepper (visited, current), the selection and the search matches,
// drawn again after the nodes on screen change (a fold, another layout).
function restoreMarks() {
  const s = active && steppers[active];
  const done = s ? s.steps.slice(0, s.k).map((st) => layout.opNodes[st.op]) : [];
  mark("visited", done.slice(0, -1));
  mark("current", done.slice(-1));
  mark("selected", selected && layout.nodes[selected] ? [selected] : []);
  mark("match", matches);
}

function counters() {
  for (const [which, s] of Object.entries(steppers)) {
    $(`${which}-count`).textContent = `${s.k} / ${s.steps.length}`;
    $(`${which}-play`).textContent = s.timer ? "pause" : "play";
  }
}

function play(which) {
  const s = steppers[which];
  const wasPlaying = s.timer !== null;
  stopPlaying();
  if (wasPlaying) return counters();
  if (s.k >= s.steps.length) s.k = 0; // from the start again
  s.timer = setInterval(() => {
    if (s.k >= s.steps.length) stopPlaying();
    else step(which, 1);
  }, 350);
  step(which, 1);
}

function stopPlaying() {
  for (const s of Object.values(steppers)) {
    clearInterval(s.timer);
    s.timer = null;
  }
  counters();
}

for (const which of ["fwd", "bwd"]) {
  $(`${which}-back`).addEventListener("click", () => { stopPlaying(); step(which, -1); });
  $(`${which}-next`).addEventListener("click", () => { stopPlaying(); step(which, 1); });
  $(`${which}-play`).addEventListener("click", () => play(which));
}
if (DATA.backward.unavailable) {
  for (const id of ["bwd-back", "bwd-next", "bwd-play"]) $(id).disabled = true;
  $("bwd").title = DATA.backward.unavailable;
}

document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" || !["ArrowLeft", "ArrowRight"].includes(e.key)) return;
  const which = active || (DATA.backward.unavailable ? "fwd" : "bwd");
  stopPlaying();
  step(which, e.key === "ArrowRight" ? 1 : -1);
});

// ---------------------------------------------------------------------------------------------
// search: the tensors whose name holds the text; Enter goes to the next one

let matches = [];
let matchAt = 0;

$("search").addEventListener("input", () => {
  const text = $("search").value.trim().toLowerCase();
  matches = text ? Object.entries(layout.nodes)
    .filter(([, n]) => n.kind === "tensor" && (DATA.tensors[n.index].name || "")
      .toLowerCase().includes(text)).map(([id]) => id) : [];
  matchAt = 0;
  $("matches").textContent = text ? `${matches.length} found` : "";
  goToMatch();
});
$("search").addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || !matches.length) return;
  matchAt = (matchAt + 1) % matches.length;
  goToMatch();
});

function goToMatch() {
  mark("match", matches);
  if (!matches.length) return;
  const id = matches[matchAt];
  for (let fold = foldOver(layout.nodes[id].place); fold; fold = foldOver(layout.nodes[id].place)) {
    folded.delete(fold); // unfold what hides it
    applyFolds();
  }
  select(id, false);
  reveal(nodes[id], true);
}

// ---------------------------------------------------------------------------------------------
// the layouts (steps unrolled / folded), and the start

for (const l of DATA.layouts.length + DATA.leftOut.length > 1 ? DATA.layouts : []) {
  const button = document.createElement("button");
  button.textContent = l.label;
  button.dataset.label = l.label;
  button.addEventListener("click", () => {
    load(l);
    $("search").dispatchEvent(new Event("input")); // find the matches in this layout
    restoreMarks();
    const s = active && steppers[active];
    if (s && s.k) reveal(shown(layout.opNodes[s.steps[s.k - 1].op]), false);
  });
  $("layouts").append(button);
}
for (const [label, why] of DATA.leftOut) { // shown, but off, saying why
  const button = document.createElement("button");
  button.textContent = label;
  button.disabled = true;
  button.title = `left out: ${why}`;
  $("layouts").append(button);
}
load(DATA.layouts.find((l) => l.default));
showIntro();
counters();
