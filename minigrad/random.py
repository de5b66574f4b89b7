"""The one random generator behind initialization, dropout and ``mg.randn``."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Reseed minigrad's generator, making initialization and dropout reproducible bit for bit."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The generator in use (replaced by ``manual_seed``)."""
    return _generator
