"""Recurrent models built only from minigrad's public ops, imported as ``minigrad.models``."""

if __name__ != "minigrad.models":  # `import models` from the repository's root, for one
    raise ImportError(
        f"import the models as minigrad.models (`from minigrad.models import LSTM`), not as "
        f"{__name__!r}: this folder is minigrad.models in every install and checkout, and a "
        "second name would load a second copy of every class"
    )

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
