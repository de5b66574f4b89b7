"""Neural-network building blocks: Module and Parameter, layers, losses, init and clipping."""

from minigrad.nn import functional, init, utils
from minigrad.nn.layers import Dropout, Embedding, Linear, ReLU, Sequential, Sigmoid, Tanh
from minigrad.nn.module import IncompatibleKeys, Module, ModuleList, Parameter

__all__ = [
    "Dropout", "Embedding", "IncompatibleKeys", "Linear", "Module", "ModuleList", "Parameter",
    "ReLU", "Sequential", "Sigmoid", "Tanh", "functional", "init", "utils",
]
