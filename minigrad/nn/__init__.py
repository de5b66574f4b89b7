"""Neural-network building blocks: Module and Parameter, layers, losses, init and clipping."""

from minigrad.nn import functional, init, utils
from minigrad.nn.layers import (
    CrossEntropyLoss,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    MSELoss,
    NLLLoss,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from minigrad.nn.module import IncompatibleKeys, Module, ModuleList, Parameter

__all__ = [
    "CrossEntropyLoss", "Dropout", "Embedding", "IncompatibleKeys", "LayerNorm", "Linear",
    "MSELoss", "Module", "ModuleList", "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid",
    "Tanh", "functional", "init", "utils",
]
