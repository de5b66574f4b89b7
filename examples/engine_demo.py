"""A first look at the engine: build a small computation, backpropagate, check the gradient.

    python examples/engine_demo.py
"""

import numpy as np

import minigrad as mg


class Cube(mg.Function):
    """cube: y = x ** 3; dx = dy * 3 x ** 2  (a user-defined op)"""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x**3

    def backward(self, gy: mg.Tensor) -> mg.Tensor:
        (x,) = self.inputs
        return gy * 3 * x * x


def neuron(w: mg.Tensor, x: mg.Tensor, b: mg.Tensor) -> mg.Tensor:
    """A tanh neuron followed by the custom op: sum(cube(tanh(w @ x + b)))."""
    return Cube.apply(mg.tanh(w @ x + b)).sum()


def main() -> None:
    mg.manual_seed(0)
    w = mg.randn(3, 4, requires_grad=True)
    x = mg.randn(4)
    b = mg.zeros(3, requires_grad=True)

    loss = neuron(w, x, b)
    loss.backward()
    print(f"loss = {loss.item():.6f}")
    print("dloss/dw =\n", np.array2string(w.grad.numpy(), precision=4))
    print("dloss/db =", np.array2string(b.grad.numpy(), precision=4))

    # Finite differences need float64: check the same function at float64 copies.
    w64, b64 = (mg.tensor(t.detach().numpy().astype(np.float64), requires_grad=True)
                for t in (w, b))
    x64 = mg.tensor(x.numpy().astype(np.float64))
    ok = mg.gradcheck(lambda w, b: neuron(w, x64, b), [w64, b64])
    ok2 = mg.gradgradcheck(lambda w, b: neuron(w, x64, b), [w64, b64])
    print(f"gradcheck: {ok}, gradgradcheck: {ok2}")


if __name__ == "__main__":
    main()
