"""jacfwd against jacrev on a tall and on a wide function: where each wins.

    python benchmarks/jacobians.py [--repeats 5]

A Jacobian of a function from n inputs to m outputs takes n Jacobian-vector products in
forward mode (``mg.func.jacfwd``: one per input element) and m vector-Jacobian products in
reverse mode (``mg.func.jacrev``: one per output element). The tall function maps 3 inputs to
300 outputs, the wide one 300 inputs to 3 outputs; both are ``tanh(W2 tanh(W1 x))`` with a
hidden layer of 64, in float64. Prints the best milliseconds per Jacobian of each, and the
same with ``torch.func`` if PyTorch is installed (it vectorizes the products with vmap).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import minigrad as mg
from minigrad import func


def best_ms(run: Callable[[], object], repeats: int) -> float:
    """The best wall time of ``run()`` over ``repeats`` runs, in milliseconds."""
    run()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def network(n: int, m: int, hidden: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weights of a network from ``n`` inputs to ``m`` outputs, and an input."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((hidden, n)) / np.sqrt(n),
            rng.standard_normal((m, hidden)) / np.sqrt(hidden), rng.standard_normal(n))


def timings(n: int, m: int, repeats: int, torch: object | None) -> list[float]:
    """ms per Jacobian of the network from ``n`` inputs to ``m`` outputs: jacfwd, jacrev and,
    with ``torch``, torch.func's."""
    w1, w2, x = network(n, m)
    W1, W2, X = (mg.tensor(a) for a in (w1, w2, x))

    def f(x: mg.Tensor) -> mg.Tensor:
        return (W2 @ (W1 @ x).tanh()).tanh()

    np.testing.assert_allclose(func.jacfwd(f)(X).data, func.jacrev(f)(X).data, rtol=1e-10)
    row = [best_ms(lambda: func.jacfwd(f)(X), repeats),
           best_ms(lambda: func.jacrev(f)(X), repeats)]
    if torch is not None:
        T1, T2, TX = (torch.tensor(a) for a in (w1, w2, x))

        def g(x: object) -> object:
            return torch.tanh(T2 @ torch.tanh(T1 @ x))

        row += [best_ms(lambda: torch.func.jacfwd(g)(TX), repeats),
                best_ms(lambda: torch.func.jacrev(g)(TX), repeats)]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        import torch
        import torch.func
    except ImportError:
        torch = None
    print(f"{'ms per Jacobian':<22}{'jacfwd':>10}{'jacrev':>10}" +
          (f"{'torch fwd':>11}{'torch rev':>11}" if torch else ""))
    for label, (n, m) in (("tall (3 -> 300)", (3, 300)), ("wide (300 -> 3)", (300, 3))):
        row = timings(n, m, args.repeats, torch)
        print(f"{label:<22}" + "".join(f"{v:>10.2f}" if k < 2 else f"{v:>11.2f}"
                                        for k, v in enumerate(row)))


if __name__ == "__main__":
    main()
