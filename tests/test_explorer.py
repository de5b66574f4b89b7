"""mg.explore: the data its page shows (checked against NumPy, mg.grad and mg.trace_backward),
the page's self-containment, and the page itself in headless Chromium (the `browser` fixture,
tests/browser.py): clicking, stepping, folding, searching, switching layouts.

Everything here renders with Graphviz's `dot` and skips without it; the browser tests also skip
without Chromium, saying why (`pytest -rs`); in CI those skips fail (conftest.py).
Set MINIGRAD_SCREENSHOTS to a folder to keep the screenshots the browser tests take (the README
shows two of them: docs/graphs/explorer-backward.png and explorer-passes.png)."""

from __future__ import annotations

import html
import importlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import forward_order
from minigrad.models import LSTM, RNNLM
from minigrad.viz.render import GraphvizNotFoundError

explore_module = importlib.import_module("minigrad.viz.explore")  # (mg.viz.explore: the function)

pytestmark = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="rendering needs Graphviz's `dot`, which is not on PATH (apt-get install graphviz)",
)


def layer() -> tuple[mg.Tensor, dict[str, mg.Tensor], mg.Tensor]:
    """A tanh layer in a scope and a squared loss: two parameters, a constant input with a zero
    and a named intermediate ``h``."""
    w = mg.tensor(np.arange(6.0).reshape(2, 3) / 10 - 0.2, requires_grad=True)
    b = mg.tensor(np.array([0.1, -0.2]), requires_grad=True)
    x = mg.tensor(np.linspace(-1, 1, 12).reshape(4, 3))
    with mg.name_scope("layer"):
        h = (x @ w.T + b).tanh().named("h")
    return (h * h).sum().named("loss"), {"w": w, "b": b}, h


def lstm(steps: int = 3) -> tuple[mg.Tensor, LSTM]:
    """An LSTM layer over ``steps`` time steps (scopes ``lstm.l0.fwd.t0`` ...), and a loss."""
    mg.manual_seed(0)
    net = LSTM(3, 4)
    out, _ = net(mg.randn(steps, 2, 3))  # (a module's calls are in its scope)
    return (out * out).mean(), net


def language_model(steps: int = 35) -> tuple[mg.Tensor, RNNLM]:
    """Embedding -> LSTM (hidden 32) -> Linear over a vocabulary of 50, batch 2, and its mean
    cross-entropy."""
    mg.manual_seed(0)
    model = RNNLM(50, 16, 32)
    rng = np.random.default_rng(0)
    ids, targets = rng.integers(0, 50, (steps, 2)), rng.integers(0, 50, (steps, 2))
    loss, _ = model.loss(ids, targets)
    return loss, model


def finite_stats(a: np.ndarray) -> dict:
    """What the page should say about an array, computed here with NumPy."""
    a = np.asarray(a, dtype=np.float64).ravel()
    f = a[np.isfinite(a)]
    counts, edges = np.histogram(f, bins=20)
    return {"size": a.size, "zeros": int((a == 0).sum()), "nonfinite": int(a.size - f.size),
            "min": f.min(), "max": f.max(), "mean": f.mean(), "std": f.std(),
            "norm": np.linalg.norm(f), "hist": counts.tolist(), "lo": edges[0], "hi": edges[-1]}


def assert_stats(shown: dict, a: np.ndarray) -> None:
    want = finite_stats(a)
    assert shown.keys() == want.keys()
    for key, value in want.items():
        assert shown[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key


def node_of(ex: mg.viz.Explorer, name: str, layout: int = 0) -> str:
    """The node id of the tensor called ``name`` in a layout."""
    (nid,) = [nid for nid, n in ex.data["layouts"][layout]["nodes"].items()
              if n["kind"] == "tensor" and ex.data["tensors"][n["index"]]["name"] == name]
    return nid


# ----------------------------------------------------------------------------------------------
# the data, without a browser


def test_every_tensors_statistics_and_gradient_are_numpys_and_mg_grads():
    loss, params, h = layer()
    ex = mg.explore(loss, params=params)
    tensors = ex.data["tensors"]
    graph_tensors = {id(x): x for fn in forward_order([loss]) for x in fn.inputs} | {id(loss): loss}
    assert len(tensors) == len(graph_tensors) == 9
    by_name = {t["name"]: t for t in tensors}
    assert by_name["w"]["shape"] == "(2, 3)" and by_name["w"]["dtype"] == "float64"
    assert by_name["w"]["leaf"] == "parameter" and by_name["h"]["leaf"] is None
    for t, x in zip(tensors, graph_tensors.values()):
        assert_stats(t["data"], x.data)
        if x.requires_grad:  # the gradient of the loss with respect to this very tensor
            (want,) = mg.grad(loss, [x], retain_graph=True)
            assert_stats(t["grad"], want.data)
        else:
            assert t["grad"] is None
    assert by_name["loss"]["grad"]["min"] == 1.0  # a scalar root starts from 1
    assert [x.grad for x in (*params.values(), h)] == [None] * 3  # no .grad touched


def test_statistics_count_zeros_and_non_finite_values_and_describe_the_finite_ones():
    a = mg.tensor(np.array([0.0, np.inf, -1.0, np.nan, 2.0, 0.0]), requires_grad=True)
    ex = mg.explore(a * 3)
    stats = {t["leaf"]: t["data"] for t in ex.data["tensors"]}["parameter"]
    assert (stats["zeros"], stats["nonfinite"], stats["size"]) == (2, 2, 6)
    assert (stats["min"], stats["max"], stats["mean"]) == (-1.0, 2.0, 0.25)
    assert sum(stats["hist"]) == 4
    json.loads(json.dumps(ex.data, allow_nan=False))  # the page's JSON has no NaN
    names = {t["dtype"] for t in mg.explore(a[mg.tensor(np.array([0, 2]))]).data["tensors"]}
    assert names == {"float64", "int64"}  # an index tensor has statistics too


def test_backward_records_are_trace_backwards_for_the_same_graph():
    loss, net = lstm()
    ex = mg.explore(loss, params=net)
    with mg.trace_backward() as tr:
        loss.backward(retain_graph=True)
    steps, ops = ex.data["backward"]["steps"], ex.data["ops"]
    assert len(steps) == len(tr.records) > 30
    for step, record in zip(steps, tr.records):
        op = ops[step["op"]]
        assert (op["name"], op["scope"]) == (record.op, record.scope)
        assert tuple(step["gradIn"]) == record.grad_in
        assert tuple(step["gradOut"]) == record.grad_out
    assert ex.data["backward"]["unavailable"] == "" and ex.data["backward"]["note"] == ""
    # each leaf's gradient is the sum delivered to it: what backward left in .grad
    for name, p in net.named_parameters():
        shown = next(t for t in ex.data["tensors"] if t["name"] == name)
        assert_stats(shown["grad"], p.grad.data)


def test_ops_in_forward_order_with_their_rule_shapes_and_what_they_keep():
    loss, params, h = layer()
    ex = mg.explore(loss, params=params)
    order = forward_order([loss])
    assert [(o["name"], o["scope"]) for o in ex.data["ops"]] == [(fn.name, fn.scope)
                                                                 for fn in order]
    tanh = next(o for o in ex.data["ops"] if o["name"] == "Tanh")
    assert tanh["rule"] == "tanh: y = tanh(x); dx = dy * (1 - y ** 2); ẏ = ẋ * (1 - y ** 2)"
    assert tanh["inputs"] == [[tanh["inputs"][0][0], "(4, 2) float64"]]
    assert tanh["outputs"] == [[node_index(ex, "h"), "(4, 2) float64"]]
    report = mg.memory_report(loss)
    assert [(o["arrays"], o["bytes"]) for o in ex.data["ops"]] == [
        (r.arrays, r.bytes) for r in report.records]
    matmul = next(o for o in ex.data["ops"] if o["name"] == "MatMul")
    assert not matmul["freed"] and [t for _, t in matmul["inputs"]] == ["(4, 3) float64",
                                                                       "(3, 2) float64"]
    pow_rule = next(o for o in mg.explore(h ** mg.tensor(2.0)).data["ops"]
                    if o["name"] == "PowTensor")["rule"]
    assert pow_rule.startswith("pow: y = a ** b for a tensor b;") and "\n" not in pow_rule


def node_index(ex: mg.viz.Explorer, name: str) -> int:
    return next(k for k, t in enumerate(ex.data["tensors"]) if t["name"] == name)


def test_after_a_freeing_backward_the_page_shows_the_grads_and_says_why_it_cannot_step():
    loss, params, h = layer()
    h.retain_grad()
    loss.backward()
    ex = mg.explore(loss, params=params)
    back = ex.data["backward"]
    assert back["steps"] == [] and "freed" in back["unavailable"]
    assert "retain_graph=True" in back["unavailable"] and back["source"] == "the tensors' .grad"
    shown = {t["name"]: t["grad"] for t in ex.data["tensors"]}
    assert_stats(shown["w"], params["w"].grad.data)
    assert_stats(shown["h"], h.grad.data)
    assert shown["loss"] is None  # a root's .grad is not kept
    assert all(o["freed"] and o["saved"] == [] for o in ex.data["ops"])


def test_a_non_scalar_root_starts_from_ones_and_the_page_says_so():
    x = mg.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    ex = mg.explore((x * x).named("y"))
    assert "ones" in ex.data["backward"]["note"] and "(3,) float64" in ex.data["backward"]["note"]
    grad_x = next(t for t in ex.data["tensors"] if t["leaf"] == "parameter")["grad"]
    assert_stats(grad_x, 2 * x.data)
    off = mg.explore(mg.tensor(np.ones(2)) * 2).data["backward"]
    assert off["steps"] == [] and "no root requires grad" in off["unavailable"]


def test_a_backward_that_raises_turns_the_stepper_off_and_says_why():
    w = mg.tensor(np.array([0.5, -1.0]), requires_grad=True)
    h = w.tanh()
    h.mul_(2)  # tanh's backward reads its output, changed since
    back = mg.explore(h.sum()).data["backward"]
    assert back["steps"] == []
    assert back["unavailable"].startswith("backward raised RuntimeError: one of the tensors "
                                          "needed for gradient computation has been modified")


def test_time_steps_get_a_second_layout_folded_which_opens_first_past_a_size(monkeypatch):
    loss, net = lstm()
    ex = mg.explore(loss, params=net)
    unrolled, folded = ex.data["layouts"]
    assert (unrolled["label"], folded["label"]) == ("steps unrolled", "steps folded")
    assert unrolled["default"] and not folded["default"]
    boxes = [n for n in folded["nodes"].values() if n["kind"] == "box"]
    assert sorted(b["scope"] for b in boxes) == [f"lstm.l0.fwd.t{t}" for t in range(3)]
    ops = ex.data["ops"]
    for b in boxes:
        assert all(ops[k]["scope"] == b["scope"] for k in b["ops"])
    assert sum(len(b["ops"]) for b in boxes) == sum(".t" in o["scope"] for o in ops)
    for layout in ex.data["layouts"]:  # every op has its node (an op, or the box it is in)
        assert len(layout["opNodes"]) == len(ops)
        for k, nid in enumerate(layout["opNodes"]):
            n = layout["nodes"][nid]
            assert n["index"] == k if n["kind"] == "op" else k in n["ops"]
        for cid, (scope, count) in layout["clusters"].items():
            assert f"<title>{cid}</title>" in layout["svg"]
            assert count == sum(o["scope"] == scope or o["scope"].startswith(scope + ".")
                                for o in ops)
    monkeypatch.setattr(explore_module, "FOLD_PAST", 10)
    assert [lay["default"] for lay in mg.explore(loss).data["layouts"]] == [False, True]
    one = mg.explore(layer()[0]).data["layouts"]
    assert [lay["label"] for lay in one] == ["graph"] and one[0]["default"]


def test_a_layout_that_dot_cannot_make_in_time_is_left_out(monkeypatch):
    monkeypatch.setattr(explore_module, "DOT_SECONDS", 0.0)
    with pytest.raises(RuntimeError, match=r"explore: dot laid out neither layout .*0 s"):
        mg.explore(lstm()[0])
    assert len(mg.explore(layer()[0]).data["layouts"]) == 1  # one layout: no time limit


def test_bad_input_raises_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="explore: give at least one tensor"):
        mg.explore()
    with pytest.raises(TypeError, match="explore: root 1 must be a Tensor; got ndarray"):
        mg.explore(layer()[0], np.ones(2))
    with pytest.raises(TypeError, match="explore: unknown option.*colour.*show_values"):
        mg.explore(layer()[0], colour="red")
    with pytest.raises(ValueError, match="explore: rankdir must be"):
        mg.explore(layer()[0], rankdir="up")
    with pytest.raises(TypeError, match="params must be a dict"):
        mg.explore(layer()[0], params=[1])
    monkeypatch.setattr(explore_module.shutil, "which", lambda name: None)
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        mg.explore(layer()[0])


def test_the_page_is_one_file_that_fetches_nothing(tmp_path):
    loss, params, _ = layer()
    ex = mg.explore(loss, params=params, legend=True, color_by="grad_norm")
    path = ex.save(tmp_path / "page.html")
    page = path.read_text(encoding="utf-8")
    assert page == ex.html() and page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page  # no URL at all, fetched or not
    assert not re.search(r"""\b(src|href)\s*=\s*(?!["']?(data:|#))""", page)  # data: only
    assert not re.search(r"url\(|@import|fetch\(|XMLHttpRequest|import\(", page)
    blob = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>',
                     page, re.S).group(1)
    assert json.loads(blob) == json.loads(json.dumps(ex.data))
    assert "</script" not in blob.lower()
    frame = ex._repr_html_()
    assert frame.startswith('<iframe srcdoc="') and "height: 640px" in frame
    assert html.unescape(frame.split('srcdoc="', 1)[1].split('" style=')[0]) == page
    assert repr(ex) == "<Explorer: 6 ops, 9 tensors; graph>"


# ----------------------------------------------------------------------------------------------
# the page in Chromium


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pages")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go: $MINIGRAD_SCREENSHOTS, else a temporary folder."""
    folder = os.environ.get("MINIGRAD_SCREENSHOTS")
    return Path(folder) if folder else tmp_path_factory.mktemp("screenshots")


def opened(browser, ex: mg.viz.Explorer, path: Path) -> None:
    """Open the page in the browser; it must log nothing worse than information."""
    browser.open(ex.save(path))
    assert browser.js("return document.readyState") == "complete"
    errors = [m for m in browser.console() if m["level"] in ("SEVERE", "WARNING")]
    assert errors == []


def panel_stats(browser, of: str) -> dict[str, float]:
    cells = browser.find_all(f"#panel table.stats[data-of={of}] td")
    return {c.get_attribute("data-stat"): float(c.text) for c in cells}


def click_node(browser, nid: str) -> None:
    (g,) = [g for g in browser.find_all("g.node") if title(g) == nid]
    g.click()


def title(element) -> str:
    return element.find_element("css selector", "title").get_attribute("textContent")


def current(browser) -> str:
    return browser.js("return document.querySelector('.current > title, .current title')"
                      ".textContent")


def test_the_page_loads_without_console_errors_or_network_requests(browser, pages):
    loss, params, _ = layer()
    ex = mg.explore(loss, params=params)
    path = pages / "layer.html"
    opened(browser, ex, path)
    urls = browser.requests()
    assert path.resolve().as_uri() in urls
    assert all(u == path.resolve().as_uri() or u.startswith(("data:", "about:")) for u in urls)
    assert len(browser.find_all("g.node")) == len(ex.data["layouts"][0]["nodes"])
    assert "backward" in browser.find("#panel").text or "Click" in browser.find("#panel").text


def test_the_notebook_view_shows_the_page_in_an_iframe(browser, pages):
    loss, params, _ = layer()
    ex = mg.explore(loss, params=params)
    path = pages / "notebook.html"
    path.write_text(f"<!DOCTYPE html><html><body>{ex._repr_html_()}</body></html>")
    browser.open(path)
    frame = browser.find("iframe")
    assert frame.size["height"] == 640 + 2  # and its border
    browser.driver.switch_to.frame(frame)
    try:
        assert len(browser.find_all("g.node")) == len(ex.data["layouts"][0]["nodes"])
        browser.click("#bwd-next")
        assert browser.find("#panel .op-name").text == "Sum"
    finally:
        browser.driver.switch_to.default_content()
    assert [m for m in browser.console() if m["level"] in ("SEVERE", "WARNING")] == []


def test_clicking_a_tensor_shows_its_real_statistics_and_gradient(browser, pages, shots):
    loss, params, h = layer()
    ex = mg.explore(loss, params=params)
    opened(browser, ex, pages / "layer.html")
    for name, x in [("h", h), ("w", params["w"])]:
        click_node(browser, node_of(ex, name))
        assert browser.find("#panel h2").text == name
        assert browser.find("#panel .shape").text == str(x.shape)
        assert browser.find("#panel .dtype").text == "float64"
        (g,) = mg.grad(loss, [x], retain_graph=True)
        for of, a in [("data", x.data), ("grad", g.data)]:
            want = finite_stats(a)
            shown = panel_stats(browser, of)
            assert shown.keys() == {"size", "min", "max", "mean", "std", "norm", "zeros",
                                    "non-finite"}
            for key, value in shown.items():
                assert value == pytest.approx(want[key.replace("-", "")], rel=1e-3, abs=1e-12)
            bars = browser.find_all(f"#panel svg.hist.{of} rect")
            assert [int(title(b)) for b in bars] == want["hist"]
        assert title(browser.find("g.node.selected")) == node_of(ex, name)
    click_node(browser, ex.data["layouts"][0]["opNodes"][3])  # an op: the Tanh
    assert browser.find("#panel .op-name").text == "Tanh"
    assert browser.find("#panel .rule").text.startswith("tanh: y = tanh(x); dx = dy * (1 - y")
    assert [li.text for li in browser.find_all("#panel ul.makes li")] == ["h (4, 2) float64"]
    click_node(browser, node_of(ex, "w"))
    assert browser.screenshot(shots / "explorer-tensor.png") == 1200


def test_stepping_backward_visits_the_order_trace_backward_records(browser, pages, shots):
    loss, net = lstm()
    ex = mg.explore(loss, params=net)
    opened(browser, ex, pages / "lstm.html")
    with mg.trace_backward() as tr:
        loss.backward(retain_graph=True)
    n = len(tr.records)
    assert browser.find("#bwd-count").text == f"0 / {n}"
    op_nodes = ex.data["layouts"][0]["opNodes"]
    for k, record in enumerate(tr.records):
        browser.click("#bwd-next")
        assert browser.find("#bwd-count").text == f"{k + 1} / {n}"
        assert browser.find("#panel .op-name").text == record.op
        assert browser.find("#panel .op-scope").text == (record.scope or "(no scope)")
        arrived = [float(v) for v in browser.find("#panel .grad-in").text.split(", ")]
        assert arrived == pytest.approx(record.grad_in, rel=1e-3)
        sent = [b.text for b in browser.find_all("#panel .grad-out b")]
        assert len(sent) == len(record.grad_out)
        for text, norm in zip(sent, record.grad_out):
            assert text == "\u2013" if norm is None else float(text) == pytest.approx(norm,
                                                                                       rel=1e-3)
        assert current(browser) == op_nodes[ex.data["backward"]["steps"][k]["op"]]
        assert len(browser.find_all("g.node.visited")) == len(set(
            op_nodes[s["op"]] for s in ex.data["backward"]["steps"][:k]))
        if k == n // 3:
            assert browser.screenshot(shots / "explorer-backward.png") == 1200
    browser.click("#bwd-next")  # past the end: stays
    assert browser.find("#bwd-count").text == f"{n} / {n}"
    browser.click("#bwd-back")
    assert browser.find("#bwd-count").text == f"{n - 1} / {n}"
    assert browser.console() == []


def test_stepping_forward_visits_the_ops_in_forward_order(browser, pages):
    loss, net = lstm(steps=2)
    ex = mg.explore(loss, params=net)
    opened(browser, ex, pages / "lstm2.html")
    order = forward_order([loss])
    for k, fn in enumerate(order):
        browser.click("#fwd-next")
        assert browser.find("#panel .op-name").text == fn.name
        assert browser.find("#panel .op-scope").text == (fn.scope or "(no scope)")
        assert current(browser) == ex.data["layouts"][0]["opNodes"][k]
    assert browser.find("#fwd-count").text == f"{len(order)} / {len(order)}"


def visible(browser, nid: str) -> bool:
    return browser.js("""for (const g of document.querySelectorAll('g.node, g.edge'))
        if (g.querySelector('title').textContent === arguments[0])
            return g.getBoundingClientRect().width > 0;""", nid)


def test_folding_a_cluster_hides_its_nodes_under_a_box_and_unfolding_shows_them(browser, pages):
    loss, params, h = layer()
    ex = mg.explore(loss, params=params)
    layout = ex.data["layouts"][0]
    opened(browser, ex, pages / "layer.html")
    (cid,) = layout["clusters"]
    inside = [nid for nid, n in layout["nodes"].items() if n["place"] == "layer"]
    outside = [nid for nid in layout["nodes"] if nid not in inside]
    assert len(inside) == 11 and all(visible(browser, nid) for nid in layout["nodes"])
    (cluster,) = [c for c in browser.find_all("g.cluster") if title(c) == cid]
    cluster.find_element("css selector", "text").click()
    assert not any(visible(browser, nid) for nid in inside)
    assert all(visible(browser, nid) for nid in outside)
    assert browser.find(".fold-cover text").text == "layer (4 ops)"
    h_node, w_node = node_of(ex, "h"), node_of(ex, "w")
    mul = layout["opNodes"][4]
    assert visible(browser, f"{h_node}->{mul}")  # crosses the border: stays
    assert not visible(browser, f"{w_node}->{layout['opNodes'][0]}")  # inside: hidden
    browser.click("#fwd-next")  # a step inside the fold lights the box
    assert "current" in browser.find(".fold-cover").get_attribute("class")
    browser.click(".fold-cover")
    assert browser.find_all(".fold-cover") == []
    assert all(visible(browser, nid) for nid in layout["nodes"])
    assert current(browser) == layout["opNodes"][0]


def test_the_search_box_finds_tensors_by_name(browser, pages):
    loss, net = lstm()
    ex = mg.explore(loss, params=net)
    opened(browser, ex, pages / "lstm.html")
    search = browser.find("#search")
    search.send_keys("HH_L")  # a part of a name, in any case
    assert browser.find("#matches").text == "2 found"
    nodes = ex.data["layouts"][0]["nodes"]
    found = {ex.data["tensors"][nodes[title(g)]["index"]]["name"]
             for g in browser.find_all("g.node.match")}
    assert found == {"weight_hh_l0", "bias_hh_l0"} and browser.find("#panel h2").text in found
    search.clear()
    search.send_keys("eight_h")
    assert browser.find("#matches").text == "1 found"
    assert browser.find("#panel h2").text == "weight_hh_l0"
    nid = node_of(ex, "weight_hh_l0")
    assert title(browser.find("g.node.selected")) == nid == title(browser.find("g.node.match"))
    box = browser.js("""const r = document.querySelector('g.node.selected').getBoundingClientRect(),
        s = document.getElementById('stage').getBoundingClientRect();
        return [r.left - s.left, s.right - r.right, r.top - s.top, s.bottom - r.bottom];""")
    assert min(box) > 0  # in view
    search.clear()
    search.send_keys("C")
    named_c = [n for n in nodes.values() if n["kind"] == "tensor"
               and "c" in (ex.data["tensors"][n["index"]]["name"] or "").lower()]
    assert len(named_c) >= 3
    assert browser.find("#matches").text == f"{len(named_c)} found"
    assert len(browser.find_all("g.node.match")) == len(named_c)
    first = title(browser.find("g.node.selected"))
    search.send_keys("\n")  # the next match
    second = browser.find("g.node.selected")
    assert title(second) != first and "match" in second.get_attribute("class")


def test_the_steps_folded_toggle_switches_layouts_and_a_step_lights_its_box(browser, pages):
    loss, net = lstm()
    ex = mg.explore(loss, params=net)
    unrolled, folded = ex.data["layouts"]
    opened(browser, ex, pages / "lstm.html")
    buttons = browser.find_all("#layouts button")
    assert [b.text for b in buttons] == ["steps unrolled", "steps folded"]
    assert "on" in buttons[0].get_attribute("class")
    steps = ex.data["backward"]["steps"]
    k = next(i for i, s in enumerate(steps) if ".t2" in ex.data["ops"][s["op"]]["scope"])
    for _ in range(k + 1):
        browser.click("#bwd-next")
    assert current(browser) == unrolled["opNodes"][steps[k]["op"]]
    buttons[1].click()
    assert "on" in buttons[1].get_attribute("class")
    assert len(browser.find_all("g.node")) == len(folded["nodes"])
    box = folded["opNodes"][steps[k]["op"]]
    assert folded["nodes"][box]["kind"] == "box" and current(browser) == box
    click_node(browser, box)
    assert browser.find("#panel h2").text == "lstm.l0.fwd.t2"
    buttons[0].click()
    assert current(browser) == unrolled["opNodes"][steps[k]["op"]]
    assert browser.console() == []


def test_a_35_step_lstm_language_model_opens_folded_and_steps(browser, pages, shots):
    loss, model = language_model(35)
    start = time.perf_counter()
    ex = mg.explore(loss, params=model)
    made = time.perf_counter() - start
    labels = [(lay["label"], lay["default"]) for lay in ex.data["layouts"]]
    assert labels == [("steps unrolled", False), ("steps folded", True)]  # 937 nodes unrolled
    start = time.perf_counter()
    opened(browser, ex, pages / "lm.html")
    steps = ex.data["backward"]["steps"]
    n = len(steps)
    folded = ex.data["layouts"][1]
    for k in range(5):
        browser.click("#bwd-next")
        assert current(browser) == folded["opNodes"][steps[k]["op"]]
    assert browser.find("#bwd-count").text == f"5 / {n}"
    assert browser.screenshot(shots / "explorer-lm-folded.png") == 1200
    browser.click("#bwd-play")
    assert browser.find("#bwd-play").text == "pause"
    deadline = time.monotonic() + 10
    while int(browser.find("#bwd-count").text.split(" / ")[0]) < 8:
        assert time.monotonic() < deadline, "play did not step"
        time.sleep(0.1)
    browser.click("#bwd-play")
    assert browser.find("#bwd-play").text == "play"
    stopped = browser.find("#bwd-count").text
    time.sleep(0.5)
    assert browser.find("#bwd-count").text == stopped
    browser.click("#layouts button")  # the 937 nodes unrolled
    assert len(browser.find_all("g.node")) == len(ex.data["layouts"][0]["nodes"]) > 900
    browser.click("#bwd-next")
    assert browser.console() == []
    print(f"35-step LSTM LM: explore {made:.1f} s, page and {int(stopped.split()[0]) + 1} "
          f"steps in the browser {time.perf_counter() - start:.1f} s")


# ----------------------------------------------------------------------------------------------
# compiled.explore(): the programs after each pass, with a slider


def compiled_cell():
    """An LSTM cell compiled, called and differentiated once: one signature to explore."""
    mg.manual_seed(0)
    step = mg.compile(mg.models.LSTMCell(3, 4))
    x, h, c = mg.randn(2, 3, requires_grad=True), mg.zeros(2, 4), mg.zeros(2, 4)
    h, (h, c) = step(x, (h, c))
    (h * h).sum().backward()
    return step


def test_a_program_page_has_every_stage_of_the_pipeline_each_program_drawn_once():
    step = compiled_cell()
    spec = step.traces[0]
    ex = step.explore()
    stages = spec.stages()
    assert [s["name"] for s in ex.data["stages"]] == [name for name, _, _ in stages]
    for shown, (_, forward, backward) in zip(ex.data["stages"], stages):
        assert shown["counts"] == [len(forward.instrs), len(backward.instrs)]
        for k, program in zip(shown["programs"], (forward, backward)):
            assert ex.data["programs"][k]["listing"] == str(program)
    listings = [p["listing"] for p in ex.data["programs"]]
    assert len(set(listings)) == len(listings) < 2 * len(stages)  # unchanged ones: once
    last = ex.data["programs"][ex.data["stages"][-1]["programs"][1]]
    kernels = {f"i{k}": ins for k, ins in enumerate(spec.backward.instrs) if ins.source}
    assert kernels and all(last["nodes"][nid]["source"] == ins.source
                           for nid, ins in kernels.items())
    assert any(n.get("recomputed") for n in last["nodes"].values())  # remat's Tanh, fused
    assert repr(ex).endswith(f"{len(stages)} stages of the pipeline>")
    page = ex.html()
    assert "http://" not in page and "https://" not in page


def test_the_pass_slider_shows_each_stages_instruction_counts(browser, pages, shots):
    step = compiled_cell()
    ex = step.explore()
    opened(browser, ex, pages / "passes.html")
    assert [u for u in browser.requests() if not u.startswith(("file:", "data:", "about:"))] == []
    stages = ex.data["stages"]
    assert browser.find("#stage-name").text.startswith(f"{len(stages)} / {len(stages)}")
    for k, s in enumerate(stages):
        browser.js("const s = document.getElementById('passes'); s.value = arguments[0];"
                   "s.dispatchEvent(new Event('input'));", k)
        f, b = s["counts"]
        assert browser.find("#stage-name").text == (
            f"{k + 1} / {len(stages)}: {s['name']} \u00b7 forward {f}, backward {b} instructions")
        drawn = {title(g) for g in browser.find_all("g.node")}
        forward = ex.data["programs"][s["programs"][0]]
        assert {f"i{j}" for j in range(f)} <= drawn <= set(forward["nodes"])
    browser.click("#show-backward")
    assert len([g for g in browser.find_all("g.node") if title(g).startswith("i")]) == b
    browser.screenshot(shots / "explorer-passes.png")


def test_a_fused_kernel_opens_to_its_generated_source(browser, pages, shots):
    step = compiled_cell()
    ex = step.explore()
    opened(browser, ex, pages / "kernel.html")
    browser.click("#show-backward")
    (k, ins), *_ = [(k, ins) for k, ins in enumerate(step.traces[0].backward.instrs)
                    if ins.source]
    click_node(browser, f"i{k}")
    assert browser.find("#panel h2").text == ins.text()
    assert browser.find("#panel pre.source").get_attribute("textContent") == ins.source
    assert "recomputes forward values" in browser.find("#panel").text
    browser.screenshot(shots / "explorer-kernel.png")
    click_node(browser, "s0")
    assert browser.find("#panel .meta").text == "f32[2,3] \u00b7 input"
