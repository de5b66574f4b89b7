"""Recurrent models built only from minigrad's public ops."""

from .cells import Cell, CoupledLSTMCell, GRUCell, LSTMCell, PeepholeLSTMCell, RNNCell
from .classify import SequenceClassifier, SequenceTagger
from .lm import RNNLM
from .recurrent import GRU, LSTM, RNN, Recurrent, scan
from .seq2seq import AttentionDecoder, Decoder, Encoder, FeatureEncoder, PeekyDecoder, Seq2Seq

__all__ = [
    "GRU", "LSTM", "RNN", "Cell", "CoupledLSTMCell", "GRUCell", "LSTMCell", "PeepholeLSTMCell",
    "RNNCell", "RNNLM", "Recurrent", "SequenceClassifier", "SequenceTagger", "scan",
    "AttentionDecoder", "Decoder", "Encoder", "FeatureEncoder", "PeekyDecoder", "Seq2Seq",
]
