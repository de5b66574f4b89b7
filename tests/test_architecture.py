"""The house's plan, checked from the source: imports point one way, engine -> ops -> nn ->
models and data -> examples. The one circle allowed is tensor.py binding the op methods."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each layer may import from its own layer and the ones before it, never from a later one.
LAYERS = [
    ("engine", ["minigrad.tensor", "minigrad.autograd", "minigrad.random"]),
    ("ops", ["minigrad.ops"]),
    ("tools", ["minigrad.gradcheck", "minigrad.reference", "minigrad.viz", "minigrad.serialization",
               "minigrad.memory"]),
    ("nn", ["minigrad.nn", "minigrad.optim", "minigrad.compile", "minigrad.func",
            "minigrad"]),  # the package re-exports them
    ("models and data", ["minigrad.models", "minigrad.data", "minigrad.train"]),
]
ALLOWED = {("minigrad.tensor", "minigrad.ops")}  # Tensor binds the op methods, at the bottom


def layer_of(module: str) -> int:
    """Index in LAYERS of the most specific prefix that names ``module``."""
    best, length = None, -1
    for k, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = k, len(prefix)
    assert best is not None, f"{module} belongs to no layer"
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "models":  # the folder is installed as minigrad.models
        parts = ["minigrad", *parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, name: str) -> list[str]:
    """The minigrad modules that ``path`` (module ``name``) imports, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found += [base] if base != "minigrad" else [f"minigrad.{a.name}" for a in node.names]
    return [m for m in found if m == "minigrad" or m.startswith("minigrad.")]


SOURCES = sorted(p for folder in ("minigrad", "models") for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_from_later_layers_to_earlier_ones(path):
    name = module_name(path)
    if name == "minigrad":
        return  # the package's front door re-exports every layer below models
    mine = layer_of(name)
    for target in imports(path, name):
        allowed = any(name == a and target.startswith(b) for a, b in ALLOWED)
        assert allowed or layer_of(target) <= mine, (
            f"{name} ({LAYERS[mine][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        )


def test_the_engine_imports_no_op_module():
    path = ROOT / "minigrad" / "autograd.py"
    assert not [m for m in imports(path, "minigrad.autograd") if m.startswith("minigrad.ops")]


def test_the_layer_check_catches_an_upward_import(tmp_path):
    assert layer_of("minigrad.ops.shape") > layer_of("minigrad.autograd")
    assert layer_of("minigrad.models.cells") > layer_of("minigrad.nn.module")
    fake = ROOT / "minigrad" / "ops" / "shape.py"
    source = tmp_path / "shape.py"
    source.write_text("from minigrad.nn import Module\nfrom ..autograd import Function\n")
    found = imports(source.with_name("shape.py"), "minigrad.ops.shape")
    assert found == ["minigrad.nn", "minigrad.autograd"]
    assert layer_of(found[0]) > layer_of(module_name(fake))


COMPILER_CORE = ["reference", "program", "trace", "arrays", "passes", "kernels", "check",
                 "codegen", "guards"]


@pytest.mark.parametrize("name", COMPILER_CORE)
def test_the_compilers_core_reads_without_its_speed_layer(name):
    """compile/fast/ builds on the core; only the pipeline and compile itself put them together,
    so that a reader of the core meets none of the speed work."""
    path = ROOT / "minigrad" / "compile" / f"{name}.py"
    fast = [m for m in imports(path, f"minigrad.compile.{name}")
            if m.startswith("minigrad.compile.fast")]
    assert not fast, f"minigrad/compile/{name}.py imports {fast}"


def test_the_textbook_compiler_stays_under_250_lines():
    assert len((ROOT / "minigrad" / "compile" / "reference.py").read_text().splitlines()) < 250
