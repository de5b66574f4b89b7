"""Recurrent models built only from minigrad's public ops."""

from models.cells import Cell, CoupledLSTMCell, GRUCell, LSTMCell, PeepholeLSTMCell, RNNCell
from models.recurrent import GRU, LSTM, RNN, Recurrent, scan

__all__ = [
    "GRU", "LSTM", "RNN", "Cell", "CoupledLSTMCell", "GRUCell", "LSTMCell", "PeepholeLSTMCell",
    "RNNCell", "Recurrent", "scan",
]
