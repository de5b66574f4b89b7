"""Recurrent models built only from minigrad's public ops."""

from models.cells import Cell, CoupledLSTMCell, GRUCell, LSTMCell, PeepholeLSTMCell, RNNCell
from models.classify import SequenceClassifier, SequenceTagger
from models.lm import RNNLM
from models.recurrent import GRU, LSTM, RNN, Recurrent, scan
from models.seq2seq import AttentionDecoder, Decoder, Encoder, FeatureEncoder, PeekyDecoder, Seq2Seq

__all__ = [
    "GRU", "LSTM", "RNN", "Cell", "CoupledLSTMCell", "GRUCell", "LSTMCell", "PeepholeLSTMCell",
    "RNNCell", "RNNLM", "Recurrent", "SequenceClassifier", "SequenceTagger", "scan",
    "AttentionDecoder", "Decoder", "Encoder", "FeatureEncoder", "PeekyDecoder", "Seq2Seq",
]
