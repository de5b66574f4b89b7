// What both of minigrad's pages share (explore.py puts it before explorer.js or program.js):
// the data, the panel, and an SVG drawn by Graphviz on the stage, to pan (drag) and zoom
// (wheel, the + and - buttons, "fit").
"use strict";

const DATA = JSON.parse(document.getElementById("explorer-data").textContent);
const $ = (id) => document.getElementById(id);
const stage = $("stage");
const panel = $("panel");

let svg = null; // the <svg> on the stage, and the <g> that Graphviz draws everything into
let drawing = null;
let view = null; // the part of the drawing in view (the viewBox), and all of it
let whole = null;

function num(v) {
  if (v === null || v === undefined) return "\u2013";
  if (typeof v === "string") return v; // nan, inf: JSON has no such numbers
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  return Number(v.toPrecision(4)).toString();
}

function esc(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span.innerHTML;
}

// Put Graphviz's SVG on the stage, all of it in view.
function mount(text) {
  stage.innerHTML = text;
  svg = stage.querySelector("svg");
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  drawing = svg.querySelector("g.graph");
  const [x, y, w, h] = svg.getAttribute("viewBox").split(/\s+/).map(Number);
  whole = {x, y, w, h};
  setView(whole);
}

function setView(v) {
  view = v;
  svg.setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
}

// A point on the screen in the drawing's coordinates (those of the viewBox).
function toDrawing(clientX, clientY) {
  return new DOMPoint(clientX, clientY).matrixTransform(svg.getScreenCTM().inverse());
}

function zoom(factor, clientX, clientY) {
  const p = toDrawing(clientX, clientY); // the point under the mouse stays where it is
  setView({x: p.x - (p.x - view.x) / factor, y: p.y - (p.y - view.y) / factor,
    w: view.w / factor, h: view.h / factor});
}

function zoomAtCentre(factor) {
  const r = stage.getBoundingClientRect();
  zoom(factor, r.left + r.width / 2, r.top + r.height / 2);
}

// Bring an element into view: centre it (`always`, or when it is not on the stage or too small
// to read), zoomed in to about a pixel per point if the drawing was smaller.
function reveal(el, always) {
  const r = el.getBoundingClientRect();
  const s = stage.getBoundingClientRect();
  const now = Math.max(view.w / s.width, view.h / s.height); // points per pixel
  const inside = r.left >= s.left && r.right <= s.right && r.top >= s.top && r.bottom <= s.bottom;
  if (inside && now < 1.5 && !always) return;
  const c = toDrawing(r.left + r.width / 2, r.top + r.height / 2);
  const scale = Math.min(1, now);
  const w = s.width * scale, h = s.height * scale;
  setView({x: c.x - w / 2, y: c.y - h / 2, w, h});
}

let drag = null; // where a press started, while the mouse button is down
let dragged = false; // whether the last press moved (then it was a pan, not a click)

stage.addEventListener("pointerdown", (e) => {
  drag = {x: e.clientX, y: e.clientY, start: toDrawing(e.clientX, e.clientY)};
  dragged = false;
});
stage.addEventListener("pointermove", (e) => {
  if (!drag) return;
  if (!dragged && Math.hypot(e.clientX - drag.x, e.clientY - drag.y) < 4) return;
  if (!dragged) stage.setPointerCapture(e.pointerId);
  dragged = true;
  const p = toDrawing(e.clientX, e.clientY);
  setView({...view, x: view.x + drag.start.x - p.x, y: view.y + drag.start.y - p.y});
});
stage.addEventListener("pointerup", () => { drag = null; });
stage.addEventListener("wheel", (e) => {
  e.preventDefault();
  zoom(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX, e.clientY);
}, {passive: false});
$("zoom-in").addEventListener("click", () => zoomAtCentre(1.4));
$("zoom-out").addEventListener("click", () => zoomAtCentre(1 / 1.4));
$("fit").addEventListener("click", () => setView(whole));
