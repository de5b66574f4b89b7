"""Data for sequence models, all offline: vocabularies, text corpora and truncated-BPTT batches
for language models, padding and minibatches, and generated tasks (integer addition, date
normalisation, phrase sentiment tagging), or seq2seq data from your own (question, answer)
strings (``Seq2SeqData.from_pairs``). Pure NumPy and the standard library; every generator
takes a seed and returns the same arrays for the same seed."""

from minigrad.data.batching import minibatches, pad_batch
from minigrad.data.tasks import (
    CAUSAL_TAG_ACCURACY,
    DATE_FORMATS,
    INTENSIFIERS,
    NEGATIONS,
    NEGATIVE,
    POSITIVE,
    SentimentData,
    Seq2SeqData,
    addition,
    dates,
    format_date,
    reverse_source,
    sentiment,
)
from minigrad.data.text import BPTTBatches, batchify, default_corpus, load_text, split_text
from minigrad.data.vocab import (
    BOS,
    BOS_ID,
    EOS,
    EOS_ID,
    PAD,
    PAD_ID,
    SPECIALS,
    TAG_PAD,
    UNK,
    UNK_ID,
    Vocab,
)

__all__ = [
    "CAUSAL_TAG_ACCURACY", "DATE_FORMATS", "INTENSIFIERS", "NEGATIONS", "NEGATIVE", "POSITIVE",
    "BOS", "BOS_ID", "BPTTBatches", "EOS", "EOS_ID", "PAD", "PAD_ID", "SPECIALS", "Seq2SeqData",
    "SentimentData", "TAG_PAD", "UNK", "UNK_ID", "Vocab", "addition", "batchify", "dates",
    "default_corpus", "format_date", "load_text", "minibatches", "pad_batch", "reverse_source",
    "sentiment", "split_text",
]
