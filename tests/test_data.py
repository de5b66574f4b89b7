"""Tests for minigrad.data: vocabularies, corpora, truncated-BPTT batches and generated tasks."""

import datetime
import time
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad.data import (
    BOS_ID,
    CAUSAL_TAG_ACCURACY,
    DATE_FORMATS,
    EOS_ID,
    NEGATIONS,
    NEGATIVE,
    PAD_ID,
    POSITIVE,
    TAG_PAD,
    BPTTBatches,
    Seq2SeqData,
    Vocab,
    addition,
    batchify,
    dates,
    default_corpus,
    format_date,
    load_text,
    pad_batch,
    reverse_source,
    sentiment,
    split_text,
)

# ---------------------------------------------------------------- Vocab


def test_special_ids():
    v = Vocab("ab", "char")
    assert v.itos == ["<pad>", "<unk>", "<s>", "</s>", "a", "b"]
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)
    assert [v.stoi[t] for t in v.itos] == list(range(6)) and len(v) == 6


def test_build_orders_by_frequency_then_token():
    stream = "b a c b c b d <s>".split()
    assert Vocab.build(stream).itos[4:] == ["b", "c", "a", "d"]
    assert Vocab.build(stream, min_freq=2).itos[4:] == ["b", "c"]
    assert Vocab.build(stream, max_size=3).itos[4:] == ["b", "c", "a"]
    v = Vocab.build(stream, level="char")
    assert Vocab(v.itos, v.level).itos == v.itos


def test_build_can_keep_first_appearance_order():
    stream = "b a c b c b d <s>".split()
    assert Vocab.build(stream, order="first").itos[4:] == ["b", "a", "c", "d"]
    assert Vocab.build(stream, min_freq=2, order="first").itos[4:] == ["b", "c"]
    # max_size still keeps the most frequent tokens; order only lists them
    assert Vocab.build(stream, max_size=3, order="first").itos[4:] == ["b", "a", "c"]
    assert Vocab.from_text("hello", order="first").itos[4:] == ["h", "e", "l", "o"]
    assert Vocab.from_text("hello").itos[4:] == ["l", "e", "h", "o"]
    assert Vocab.from_text("to be or not to be", "word", order="first").itos[4:] == [
        "to", "be", "or", "not"]


def test_word_tokenize():
    v = Vocab.from_text("Hello, world! Don't panic...", level="word")
    assert v.tokenize("Hello, world! Don't panic...") == [
        "Hello", ",", "world", "!", "Don't", "panic", ".", ".", "."
    ]
    assert v.itos[4] == "." and v.level == "word"
    assert Vocab.from_text("abba").tokenize("ab c") == ["a", "b", " ", "c"]


@given(st.text())
def test_char_round_trip(text):
    v = Vocab.from_text(text)
    ids = v.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert v.decode_text(ids) == text
    assert v.decode(v.encode(list(text))) == list(text)


@given(st.text(alphabet="ab'.,!? \n"))
def test_word_round_trip(text):
    v = Vocab.from_text(text, level="word")
    tokens = v.tokenize(text)
    assert "".join(tokens) == "".join(text.split())
    assert v.decode(v.encode(text)) == tokens
    assert v.tokenize(v.decode_text(v.encode(tokens))) == tokens


def test_unknown_tokens_and_strip_specials():
    v = Vocab.from_text("abc")
    ids = v.encode("abz")
    assert ids[-1] == v.unk_id and v.decode(ids) == ["a", "b", "<unk>"]
    ids = [v.bos_id, v.stoi["a"], v.unk_id, v.eos_id, v.pad_id]
    assert v.decode(ids) == ["a", "<unk>"]
    assert v.decode(ids, strip_specials=False) == ["<s>", "a", "<unk>", "</s>", "<pad>"]
    assert v.decode_text(ids, strip_specials=False) == "<s>a<unk></s><pad>"
    assert v.encode([]).shape == (0,) and v.decode([]) == []


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: Vocab("ab", "byte"), ValueError, "level must be 'char' or 'word'"),
        (lambda: Vocab.from_text("ab", "byte"), ValueError, "level must be 'char' or 'word'"),
        (lambda: Vocab(["ab"], "char"), ValueError, "one character, got 'ab'"),
        (lambda: Vocab(["x", "y", "x"]), ValueError, "duplicate token 'x'"),
        (lambda: Vocab([3]), TypeError, "non-empty strings, got 3"),
        (lambda: Vocab.build("ab", min_freq=0), ValueError, "min_freq must be >= 1"),
        (lambda: Vocab.from_text("ab", order="sorted"), ValueError,
         "Vocab.build: order must be 'frequency' or 'first', got 'sorted'"),
        (lambda: Vocab("ab").decode([4, 6]), ValueError, r"id 6 is outside \[0, 6\)"),
        (lambda: Vocab("ab").decode([-1]), ValueError, "id -1 is outside"),
        (lambda: Vocab("ab").decode([[4]]), ValueError, r"1-D integer array, got shape \(1, 1\)"),
        (lambda: Vocab("ab").decode([4.0]), ValueError, "1-D integer array.*float64"),
    ],
)
def test_vocab_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ---------------------------------------------------------------- corpora


def test_default_corpus_is_pydoc_topics():
    from pydoc_data.topics import topics

    text = default_corpus()
    assert len(text) > 100_000
    end = 0
    for key in sorted(topics):
        start = text.find(topics[key], end)
        assert start == (0 if key == min(topics) else end + 1), key
        end = start + len(topics[key])
    assert end == len(text)


def test_load_text(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("héllo wörld\n", encoding="utf-8")
    assert load_text(path) == load_text(str(path)) == "héllo wörld\n"
    with pytest.raises(FileNotFoundError, match="no such file: .*missing.txt"):
        load_text(tmp_path / "missing.txt")
    path.write_text(" \n")
    with pytest.raises(ValueError, match="t.txt is empty"):
        load_text(path)
    path.write_bytes(b"\xff\xfe abc")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_text(path)


@given(st.integers(20, 400), st.sampled_from([0.0, 0.05, 0.1, 0.25]), st.sampled_from([0.0, 0.1]))
def test_split_text_contiguous(n, valid_fraction, test_fraction):
    text = "".join(chr(97 + i % 26) for i in range(n))
    train, valid, test = split_text(text, valid_fraction, test_fraction)
    assert train + valid + test == text
    assert len(valid) == round(n * valid_fraction) and len(test) == round(n * test_fraction)
    ids = np.arange(n)
    parts = split_text(ids, valid_fraction, test_fraction)
    assert [len(p) for p in parts] == [len(train), len(valid), len(test)]
    np.testing.assert_array_equal(np.concatenate(parts), ids)


@pytest.mark.parametrize(
    "text, fractions, match",
    [
        ("", (0.1, 0.0), "text is empty"),
        ("abcdefghij", (1.0, 0.0), r"valid_fraction must be in \[0, 1\)"),
        ("abcdefghij", (0.1, -0.1), r"test_fraction must be in \[0, 1\)"),
        ("abcdefghij", (0.5, 0.5), "must be < 1"),
        ("abc", (0.1, 0.0), "length 3 is too short: the valid split would be empty"),
        ("ab", (0.6, 0.3), "length 2 is too short: the train split would be empty"),
    ],
)
def test_split_text_errors(text, fractions, match):
    with pytest.raises(ValueError, match=match):
        split_text(text, *fractions)


# ---------------------------------------------------------------- BPTT batching


@st.composite
def streams(draw, min_rows=1):
    """(ids, batch_size, n_rows) with at least min_rows ids per stream."""
    batch_size = draw(st.integers(1, 8))
    n = draw(st.integers(min_rows * batch_size, 60))
    return np.arange(100, 100 + n), batch_size, n // batch_size


@given(streams())
def test_batchify_streams_in_order(case):
    ids, batch_size, rows = case
    data = batchify(ids.tolist(), batch_size)
    assert data.shape == (rows, batch_size) and data.dtype == np.int64
    for b in range(batch_size):
        np.testing.assert_array_equal(data[:, b], ids[b * rows : (b + 1) * rows])


@given(streams(min_rows=2), st.integers(1, 12))
def test_bptt_batches_rebuild_the_streams(case, bptt):
    ids, batch_size, rows = case
    batches = BPTTBatches(ids, batch_size, bptt)
    chunks = list(batches)
    assert len(chunks) == len(batches) == -(-(rows - 1) // bptt)
    for i, (x, y) in enumerate(chunks):
        assert x.dtype == y.dtype == np.int64 and x.shape == y.shape
        assert x.shape[1] == batch_size and 1 <= x.shape[0] <= bptt
        if i < len(chunks) - 1:
            assert x.shape[0] == bptt
        np.testing.assert_array_equal(x[1:], y[:-1])
    for (_, y), (x, _) in zip(chunks, chunks[1:]):
        np.testing.assert_array_equal(y[-1], x[0])
    read = np.vstack([x for x, _ in chunks] + [chunks[-1][1][-1:]])
    np.testing.assert_array_equal(read.T.ravel(), ids[: rows * batch_size])
    again = list(batches)
    assert all((a == b).all() and (c == d).all() for (a, c), (b, d) in zip(chunks, again))


@pytest.mark.parametrize(
    "ids, batch_size, bptt, error, match",
    [
        ([], 2, 5, ValueError, "BPTTBatches: ids is empty"),
        (np.arange(10), 0, 5, ValueError, "batch_size must be >= 1, got 0"),
        (np.arange(10), 2, 0, ValueError, "bptt must be >= 1, got 0"),
        (np.arange(10), 2.0, 5, TypeError, "batch_size must be an int, got float"),
        (np.arange(7), 4, 5, ValueError, r"7 tokens is too short .*\(2, 4\).*at least .* = 8"),
        (np.arange(10.0), 2, 5, ValueError, "1-D integer ids, got shape .*float64"),
        (np.arange(10).reshape(2, 5), 2, 5, ValueError, r"1-D integer ids, got shape \(2, 5\)"),
    ],
)
def test_bptt_batches_errors(ids, batch_size, bptt, error, match):
    with pytest.raises(error, match=match):
        BPTTBatches(ids, batch_size, bptt)


def test_batchify_errors():
    with pytest.raises(ValueError, match="batchify: ids is empty"):
        batchify([], 1)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        batchify([1, 2], -1)
    with pytest.raises(ValueError, match="3 ids cannot fill 4 streams"):
        batchify([1, 2, 3], 4)


def test_pad_batch():
    out = pad_batch([[1, 2, 3], np.array([4]), []], pad_id=9)
    np.testing.assert_array_equal(out, [[1, 2, 3], [4, 9, 9], [9, 9, 9]])
    assert out.dtype == np.int64
    assert pad_batch([[1]], 0, length=4).tolist() == [[1, 0, 0, 0]]
    assert pad_batch([], 0).shape == (0, 0)
    with pytest.raises(ValueError, match="sequence 1 has length 3 > length=2"):
        pad_batch([[1], [1, 2, 3]], 0, length=2)
    with pytest.raises(ValueError, match=r"sequence 0 must be 1-D, got shape \(1, 1\)"):
        pad_batch([[[1]]], 0)


# ---------------------------------------------------------------- your own pairs


def test_from_pairs_builds_vocabularies_splits_in_order_and_round_trips():
    pairs = [("cab", "1"), ("a", ""), ("bb", "22"), ("abc", "13"), ("c", "3")]
    data = Seq2SeqData.from_pairs(pairs, test_fraction=0.4, order="first")
    assert data.src_vocab.itos[4:] == ["c", "a", "b"] and data.tgt_vocab.itos[4:] == ["1", "2", "3"]
    assert data.train_src.shape == (3, 3) and data.test_src.shape == (2, 3)
    assert data.train_tgt.shape == (3, 4) and data.test_tgt.shape == (2, 4)  # <s> 2 chars </s>
    assert data.decode_source(data.train_src) == ["cab", "a", "bb"]
    assert data.decode_target(data.test_tgt) == ["13", "3"]
    _check_targets(np.concatenate([data.train_tgt, data.test_tgt]), [1, 0, 2, 2, 1])
    np.testing.assert_array_equal(data.train_src[1], [5, PAD_ID, PAD_ID])
    # frequency order by default, words at word level, fixed lengths on request
    words = Seq2SeqData.from_pairs([("a b b", "x y"), ("b", "y")], 0.0, level="word",
                                   src_len=4, tgt_len=5)
    assert words.src_vocab.itos[4:] == ["b", "a"] and words.tgt_vocab.itos[4:] == ["y", "x"]
    assert words.train_src.shape == (2, 4) and words.train_tgt.shape == (2, 5)
    assert words.test_src.shape == (0, 4) and words.decode_target(words.train_tgt) == ["x y", "y"]


def test_from_pairs_with_given_vocabularies_uses_their_ids_and_unk():
    digits = Vocab("0123456789", "char")
    data = Seq2SeqData.from_pairs([("12", "3"), ("45", "x")], 0.5, src_vocab=digits,
                                  tgt_vocab=digits)
    assert data.src_vocab is digits and data.tgt_vocab is digits
    np.testing.assert_array_equal(data.train_src[0], digits.encode("12"))
    np.testing.assert_array_equal(data.test_tgt[0], [BOS_ID, digits.unk_id, EOS_ID])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(pairs=[]), ValueError, "Seq2SeqData.from_pairs: no pairs given"),
    (dict(pairs=[("a", "b"), ("a",)]), TypeError,
     r"pair 1 must be two strings \(question, answer\); got \('a',\)"),
    (dict(pairs=[("a", 1)]), TypeError, "pair 0 must be two strings"),
    (dict(pairs=[("a", "b"), ("", "c")]), ValueError,
     r"the question of pair 1 \(''\) holds no token; every question needs one"),
    (dict(pairs=[("a b", "c"), (" ", "c")], level="word"), ValueError,
     r"the question of pair 1 \(' '\) holds no token"),
    (dict(pairs=[("a", "b")], test_fraction=1.0), ValueError,
     r"Seq2SeqData.from_pairs: test_fraction must be in \[0, 1\)"),
    (dict(pairs=[("a", "b"), ("a", "c")], test_fraction=0.8), ValueError, "leaves no training"),
    (dict(pairs=[("a", "b")], level="byte"), ValueError, "level must be 'char' or 'word'"),
    (dict(pairs=[("abc", "b"), ("a", "b")], src_len=2), ValueError,
     "src_len=2 is too short: pair 0 needs 3 tokens"),
    (dict(pairs=[("a", "b"), ("a", "bcd")], tgt_len=4), ValueError,
     "tgt_len=4 is too short: pair 1 needs 5 tokens"),
])
def test_from_pairs_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Seq2SeqData.from_pairs(**kwargs)


# ---------------------------------------------------------------- addition


def _check_targets(tgt, n_tokens):
    """Each row is <s>, n_tokens[i] tokens, </s>, then padding."""
    for row, k in zip(tgt, n_tokens):
        assert row[0] == BOS_ID and row[k + 1] == EOS_ID and (row[k + 2 :] == PAD_ID).all()
        assert not np.isin(row[1 : k + 1], [PAD_ID, BOS_ID, EOS_ID]).any()


def test_addition_answers_are_sums():
    data = addition(n=3000, seed=7)
    assert data.train_src.shape == (2700, 7) and data.test_tgt.shape == (300, 6)
    for src, tgt in ((data.train_src, data.train_tgt), (data.test_src, data.test_tgt)):
        questions, answers = data.decode_source(src), data.decode_target(tgt)
        for q, ans in zip(questions, answers):
            a, b = q.split("+")
            assert int(a) + int(b) == int(ans) and str(int(a)) == a and int(a) <= 999
        _check_targets(tgt, [len(a) for a in answers])
    train, test = data.decode_source(data.train_src), data.decode_source(data.test_src)
    assert len(set(train)) == len(train) and len(set(test)) == len(test)
    assert not set(train) & set(test)


def test_addition_is_deterministic_per_seed():
    a, b, c = addition(n=500, seed=1), addition(n=500, seed=1), addition(n=500, seed=2)
    for name in ("train_src", "train_tgt", "test_src", "test_tgt"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.train_src, c.train_src)
    assert a.src_vocab.itos == c.src_vocab.itos


def test_addition_default_matches_the_book():
    data = addition()
    assert data.train_src.shape == (45_000, 7) and data.test_src.shape == (5_000, 7)
    questions = data.decode_source(data.train_src) + data.decode_source(data.test_src)
    assert len(set(questions)) == 50_000
    digits = np.bincount([len(q.split("+")[0]) for q in questions], minlength=4)[1:] / 50_000
    # Uniform in digit length, not in value (which would give 1%, 9%, 90%).
    assert digits[0] > 0.1 and digits[2] < 0.6


def test_addition_exhausts_one_digit_questions():
    data = addition(n=100, max_digits=1, test_fraction=0.2)
    questions = data.decode_source(data.train_src) + data.decode_source(data.test_src)
    assert sorted(questions) == sorted(f"{a}+{b}" for a in range(10) for b in range(10))
    with pytest.raises(ValueError, match="only 100 distinct questions .* n=101"):
        addition(n=101, max_digits=1)
    with pytest.raises(ValueError, match=r"addition: test_fraction must be in \[0, 1\)"):
        addition(n=10, test_fraction=1.0)
    with pytest.raises(ValueError, match="addition: n must be >= 1"):
        addition(n=0)
    with pytest.raises(ValueError, match="leaves no training data"):
        addition(n=1, test_fraction=0.9)


# ---------------------------------------------------------------- dates


def test_date_formats_render_the_documented_examples():
    day = datetime.date(1994, 9, 27)
    rendered = {format_date(day, pattern, case) for pattern, case in DATE_FORMATS}
    assert len(rendered) == len(DATE_FORMATS) >= 10
    assert rendered >= {
        "september 27, 1994", "27 Sep 1994", "9/27/94", "27.09.1994",
        "Tuesday, September 27, 1994", "1994 09 27",
    }
    with pytest.raises(ValueError, match="case must be one of"):
        format_date(day, "%Y", "shout")
    with pytest.raises(ValueError, match=r"unknown directives \['j'\]"):
        format_date(day, "%Y %j")


def test_dates_parse_back_with_datetime_for_every_format():
    data = dates(n=2000, seed=5)
    sources = data.decode_source(data.train_src) + data.decode_source(data.test_src)
    targets = data.decode_target(data.train_tgt) + data.decode_target(data.test_tgt)
    _check_targets(np.vstack([data.train_tgt, data.test_tgt]), [10] * len(targets))
    used = set()
    for src, iso in zip(sources, targets):
        day = datetime.date.fromisoformat(iso)
        parsed = []
        for pattern, case in DATE_FORMATS:
            try:
                t = time.strptime(src, pattern.replace("%-", "%"))
            except ValueError:
                continue
            used.add((pattern, case))
            parsed.append((t.tm_year, t.tm_mon, t.tm_mday, t.tm_wday))
        # Every format that reads the string reads the same date, weekday names included.
        assert parsed and set(parsed) == {(day.year, day.month, day.day, day.weekday())}, src
        assert 1900 <= day.year <= 2099
    assert used == set(DATE_FORMATS)
    assert len(set(targets)) == len(targets)


def test_dates_are_deterministic_per_seed():
    a, b, c = dates(n=300, seed=1), dates(n=300, seed=1), dates(n=300, seed=2)
    np.testing.assert_array_equal(a.train_src, b.train_src)
    np.testing.assert_array_equal(a.test_tgt, b.test_tgt)
    assert a.decode_source(a.train_src) != c.decode_source(c.train_src)
    with pytest.raises(ValueError, match="only 73049 distinct dates"):
        dates(n=73_050)


def test_reverse_source():
    data = addition(n=400, seed=3)
    before = data.train_src.copy()
    rev = reverse_source(data)
    np.testing.assert_array_equal(data.train_src, before)
    for src, rsrc in ((data.train_src, rev.train_src), (data.test_src, rev.test_src)):
        assert data.decode_source(rsrc) == [q[::-1] for q in data.decode_source(src)]
        np.testing.assert_array_equal(src == PAD_ID, rsrc == PAD_ID)
    assert rev.train_tgt is data.train_tgt and rev.src_vocab is data.src_vocab
    np.testing.assert_array_equal(reverse_source(rev).test_src, data.test_src)


def test_decode_target_stops_at_eos():
    data = addition(n=10)
    d = data.tgt_vocab.stoi
    prediction = [[d["1"], d["2"], EOS_ID, d["7"]], [BOS_ID, d["5"], PAD_ID, d["3"]]]
    assert data.decode_target(prediction) == ["12", "53"]
    assert data.decode_target(prediction[0]) == ["12"]


# ---------------------------------------------------------------- sentiment


def _rule_tags(words):
    """Tags by the generating rule, read with the whole sentence: a phrase ends at its polar word
    and is positive iff that word is positive xor the phrase holds a negation."""
    tags, phrase = [], []
    for word in words:
        phrase.append(word)
        if word in POSITIVE or word in NEGATIVE:
            negated = any(w in NEGATIONS for w in phrase)
            tags += [int((word in POSITIVE) != negated)] * len(phrase)
            phrase = []
    assert not phrase, "a sentence ends with its last phrase's polar word"
    return tags


def _sentences(data, split):
    tokens, lengths = getattr(data, f"{split}_tokens"), getattr(data, f"{split}_lengths")
    return [data.vocab.decode(row[:k]) for row, k in zip(tokens, lengths)]


def test_sentiment_follows_the_generating_rule():
    data = sentiment(n=2000, seed=3)
    assert len(data.train_labels) == 1600 and len(data.test_labels) == 400
    for split in ("train", "test"):
        tokens, tags = getattr(data, f"{split}_tokens"), getattr(data, f"{split}_tags")
        lengths, labels = getattr(data, f"{split}_lengths"), getattr(data, f"{split}_labels")
        assert tokens.shape == tags.shape and tokens.dtype == tags.dtype == np.int64
        np.testing.assert_array_equal((tokens != PAD_ID).sum(axis=1), lengths)
        for row_tags, k, label, words in zip(tags, lengths, labels, _sentences(data, split)):
            assert row_tags[:k].tolist() == _rule_tags(words) and label == row_tags[k - 1]
            assert (row_tags[k:] == TAG_PAD).all()
    train, test = (_sentences(data, s) for s in ("train", "test"))
    keys = [" ".join(w) for w in train + test]
    assert len(set(keys)) == len(keys)
    assert 0.4 < data.train_labels.mean() < 0.6
    again = sentiment(n=2000, seed=3)
    np.testing.assert_array_equal(again.test_tokens, data.test_tokens)
    assert not np.array_equal(sentiment(n=2000, seed=4).test_tokens, data.test_tokens)


def test_sentiment_left_to_right_bound():
    data = sentiment()
    assert f"= {CAUSAL_TAG_ACCURACY:.3f}" in sentiment.__doc__
    assert abs(data.causal_bound("test") - CAUSAL_TAG_ACCURACY) < 0.01
    assert abs(data.causal_bound("train") - CAUSAL_TAG_ACCURACY) < 0.01
    # The best causal tagger: exact on polar words, a constant guess before them...
    right = total = 0
    groups = defaultdict(list)
    for words, tags in zip(_sentences(data, "train"), data.train_tags):
        negated, previous = False, -1
        for word, tag in zip(words, tags.tolist()):
            if word in POSITIVE or word in NEGATIVE:
                right += int((word in POSITIVE) != negated) == tag
                negated, previous = False, tag
            else:
                negated |= word in NEGATIONS
                right += tag == 1
                groups[word, negated, previous].append(tag)
            total += 1
    assert abs(right / total - data.causal_bound("train")) < 0.01
    # ...which is the best it can do: before the polar word, what was read says nothing.
    rates = [np.mean(g) for g in groups.values() if len(g) >= 1000]
    assert len(rates) > 10 and max(abs(r - 0.5) for r in rates) < 0.06


def test_sentiment_errors():
    with pytest.raises(ValueError, match="sentiment: n must be >= 1"):
        sentiment(n=0)
    with pytest.raises(ValueError, match=r"sentiment: test_fraction must be in \[0, 1\)"):
        sentiment(n=10, test_fraction=1.5)
    with pytest.raises(ValueError, match="causal_bound: split must be 'train' or 'test'"):
        sentiment(n=10).causal_bound("valid")
