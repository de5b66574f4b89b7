"""The textbook reverse-mode engine in a few dozen lines: read this before ``autograd.py``.

Backward visits the graph's nodes in reverse topological order, so a node runs only after
every node that used its outputs. At each node it takes the gradient summed at each output,
calls the node's ``backward`` (the chain rule for one op), reduces each input's gradient to the
input's shape (undoing broadcasting), and adds it to what that input has received so far: a
value used twice gets the sum of both gradients. What reaches a leaf is its gradient.

That is the whole algorithm. ``minigrad.autograd.run_backward`` walks the same order and adds
what a framework needs around it: hooks, freeing saved arrays unless ``retain_graph``, anomaly
checks, ``mg.grad``'s capture of chosen tensors, and its sums as plain NumPy additions when no
graph is recorded. The tests hold the real engine to this one on random graphs.
"""

from __future__ import annotations

import numpy as np

from minigrad.autograd import forward_order
from minigrad.tensor import Tensor


def grad(root: Tensor, inputs: list[Tensor]) -> list[Tensor | None]:
    """d root / d x for each tensor x in ``inputs`` (None where ``root`` does not depend on x).

    ``root`` must have one element. Nothing is freed, so the graph can be used again. The ops
    that backward runs are recorded like any others (the real engine records them only under
    ``create_graph=True``), so the gradients returned can be differentiated again.
    """
    if root.data.size != 1 or root.grad_fn is None:
        raise ValueError(f"reference.grad: root must be a one-element result of ops; got "
                         f"shape {root.shape}, grad_fn {root.grad_fn}")
    grads = {id(root): Tensor(np.ones_like(root.data))}  # tensor id -> gradient summed so far
    for fn in reversed(forward_order([root])):
        outputs = [ref() for ref in fn.outputs]
        if not any(id(y) in grads for y in outputs if y is not None):
            continue  # no gradient flows into this node
        grad_outputs = [
            grads.pop(id(y)) if y is not None and id(y) in grads
            else Tensor(np.zeros(*fn.output_meta[i]))  # an unused output: zero gradient
            for i, y in enumerate(outputs)
        ]
        input_grads = fn.backward(*grad_outputs)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for x, g in zip(fn.inputs, input_grads):
            if g is None or not x.requires_grad:
                continue
            g = g.sum_to_size(x.shape).astype(x.dtype)  # undo broadcasting
            grads[id(x)] = grads[id(x)] + g if id(x) in grads else g
    return [grads.get(id(x)) for x in inputs]
