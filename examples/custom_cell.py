"""Write a new recurrent cell in a few lines; get layers, stacking and bidirectionality for free.

The cell is the minimal gated unit (MGU, Zhou et al., 2016), a GRU with a single gate:

    f  = σ(W_f x + U_f h + b_f)
    h' = (1 − f) ⊙ h + f ⊙ tanh(W_h x + U_h (f ⊙ h) + b_h)

It is written twice. ``MGU`` is the plain style: a Module with ``forward(x, h) -> (h, h)`` and a
``hidden_size``; ``Recurrent`` calls it once per step. ``FusedMGU`` subclasses
``minigrad.models.Cell``: the base class owns the fused weights (PyTorch's layout) and
computes the input side ``W x + b`` for the whole sequence in one matmul, and the cell only
writes ``step``. The script checks that both compute the same function, gradchecks them in
float64, stacks the cell bidirectionally and trains it on a task that needs the future: read a
sequence of random tokens and, at each position t, name the token that comes ``SHIFT`` steps
later. A forward-only layer cannot know it (chance is 1 / VOCAB); the reverse direction has
already seen it. The training step runs compiled (``mg.compile``): the new cell gets fused
kernels without writing any; ``--eager`` runs the plain engine instead.

    python examples/custom_cell.py --steps 300 --seed 0
    python examples/custom_cell.py --eager
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import minigrad as mg
from minigrad.models import Cell, Recurrent
from minigrad.nn import Linear, Module
from minigrad.nn import functional as F

VOCAB, LENGTH, SHIFT, HIDDEN, BATCH = 4, 10, 3, 16, 32


class MGU(Module):
    """Minimal gated unit, plain style: ``forward(x, h) -> (h, h)``, one call per step."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.forget = Linear(input_size + hidden_size, hidden_size)
        self.candidate = Linear(input_size + hidden_size, hidden_size)

    def forward(self, x: mg.Tensor, h: mg.Tensor) -> tuple[mg.Tensor, mg.Tensor]:
        """One step from input ``x (B, I)`` and state ``h (B, H)``."""
        f = self.forget(mg.concat([x, h], axis=1)).sigmoid()
        h = (1 - f) * h + f * self.candidate(mg.concat([x, f * h], axis=1)).tanh()
        return h, h


class FusedMGU(Cell):
    """Minimal gated unit on ``Cell``: fused weights (f, h) and a batched input side."""

    gates = 2

    def step(self, xp: mg.Tensor, h: mg.Tensor) -> tuple[mg.Tensor, mg.Tensor]:
        """One step from the projected input ``xp = W x + b`` (B, 2H) and ``h (B, H)``."""
        x_f, x_h = xp.chunk(2, dim=-1)
        u_f, u_h = self.weight_hh.chunk(2)
        b_f, b_h = self.bias_hh.chunk(2) if self.bias else (0.0, 0.0)
        f = (x_f + h @ u_f.T + b_f).sigmoid()
        h = (1 - f) * h + f * (x_h + (f * h) @ u_h.T + b_h).tanh()
        return h, h


def fuse(plain: MGU, fused: FusedMGU) -> None:
    """Copy the plain cell's weights into the fused one: [W | U] splits into W_ih and W_hh."""
    n_in = fused.input_size
    weights = [plain.forget.weight.data, plain.candidate.weight.data]
    fused.load_state_dict({
        "weight_ih": np.concatenate([w[:, :n_in] for w in weights]),
        "weight_hh": np.concatenate([w[:, n_in:] for w in weights]),
        "bias_ih": np.concatenate([plain.forget.bias.data, plain.candidate.bias.data]),
        "bias_hh": np.zeros(2 * fused.hidden_size),
    })


def check_the_two_styles() -> None:
    """Same function, correct gradients: in float64, through a 2-layer bidirectional stack."""
    plain = Recurrent(MGU, 3, 4, num_layers=2, bidirectional=True).double()
    fused = Recurrent(FusedMGU, 3, 4, num_layers=2, bidirectional=True).double()
    for plain_cell, fused_cell in zip(plain.cells, fused.cells):
        fuse(plain_cell, fused_cell)
    x = mg.randn(5, 2, 3, dtype=np.float64, requires_grad=True)
    difference = np.abs(plain(x)[0].data - fused(x)[0].data).max()
    print(f"plain MGU vs FusedMGU, 2 layers x 2 directions: max |difference| = {difference:.1e}")

    for cell in (MGU(3, 4).double(), FusedMGU(3, 4).double()):
        x0, h = mg.randn(2, 3, dtype=np.float64), mg.randn(2, 4, dtype=np.float64)
        inputs = [x0.requires_grad_(), h.requires_grad_(), *cell.parameters()]
        mg.gradcheck(lambda x, h, *_, cell=cell: cell(x, h)[0], inputs)
    for layer in (plain, fused):
        hx = mg.randn(4, 2, 4, dtype=np.float64, requires_grad=True)
        mg.gradcheck(lambda x, hx, *_, layer=layer: layer(x, hx), [x, hx, *layer.parameters()],
                     fast_mode=True)
    print("gradcheck (float64) of one step of each cell, and of each 2-layer bidirectional "
          "stack w.r.t. x, h0 and all its parameters: passed")


def batch(rng: np.random.Generator, size: int) -> tuple[mg.Tensor, np.ndarray]:
    """One-hot token sequences (T, B, VOCAB) and targets (T - SHIFT, B): the token SHIFT ahead."""
    tokens = rng.integers(0, VOCAB, (LENGTH, size))
    return mg.tensor(np.eye(VOCAB, dtype=np.float32)[tokens]), tokens[SHIFT:]


class Tagger(Module):
    """A recurrent layer and a linear read-out at every position."""

    def __init__(self, bidirectional: bool) -> None:
        super().__init__()
        self.rnn = Recurrent(FusedMGU, VOCAB, HIDDEN, bidirectional=bidirectional)
        self.out = Linear(HIDDEN * self.rnn.num_directions, VOCAB)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        """Logits (T - SHIFT, B, VOCAB) for the positions that have a token SHIFT ahead."""
        output, _ = self.rnn(x)
        return self.out(output[: LENGTH - SHIFT])


def train(bidirectional: bool, steps: int, seed: int, eager: bool) -> float:
    """Train with Adam (compiled unless ``eager``); print the loss as it falls; return the
    accuracy on fresh sequences."""
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Tagger(bidirectional)
    optimizer = mg.optim.Adam(model.parameters(), lr=0.02)

    def tagging_loss(x: mg.Tensor, target: np.ndarray) -> mg.Tensor:
        return F.cross_entropy(model(x), target, axis=-1)

    step_loss = tagging_loss if eager else mg.compile(tagging_loss)
    for step in range(1, steps + 1):
        x, target = batch(rng, BATCH)
        loss = step_loss(x, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 1 or step % max(steps // 6, 1) == 0:
            print(f"  step {step:4d}  loss {loss.item():.3f}")
    x, target = batch(rng, 1000)
    with mg.no_grad():
        predicted = model.eval()(x).data.argmax(axis=-1)
    return float((predicted == target).mean())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--eager", action="store_true",
                        help="train with the eager engine instead of mg.compile")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    mg.manual_seed(args.seed)
    check_the_two_styles()

    print(f"\ntask: at each position name the token {SHIFT} steps ahead "
          f"(vocabulary {VOCAB}, length {LENGTH}; chance = {1 / VOCAB:.0%})")
    for bidirectional in (True, False):
        name = "bidirectional" if bidirectional else "forward only"
        print(f"{name} Recurrent(FusedMGU, {VOCAB}, {HIDDEN}), batch {BATCH}, "
              f"{'eager' if args.eager else 'compiled'}:")
        start = time.perf_counter()
        accuracy = train(bidirectional, args.steps, args.seed, args.eager)
        print(f"  accuracy on 1000 new sequences: {accuracy:.1%} "
              f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
