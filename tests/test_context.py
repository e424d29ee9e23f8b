"""bigram.context and the k-gram through the library: counts equal a direct loop over
the names, the k = 2 model trained on counts equals the notebook's one-hot loop over
pair indices, and sampling follows the context."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigram.comparison import bigram_table, table_layout
from bigram.console import PipelineError
from bigram.context import (
    MAX_WEIGHTS,
    advance,
    check_size,
    context_rows,
    label,
    weights_needed,
)
from bigram.names import encode
from bigram.params import TrainParams
from bigram.splitting import split_counts, split_pairs
from bigram.training import fit
from tests import notebook
from tests.conftest import NOTEBOOK_NAMES, REAL_NAMES
from tests.test_sampling import sample

TRICKY = ["a", "aa", "aaa", "abcabc", "b", "cab", "ba", "abba", "c"]


def direct_counts(names, vocab, k, assign):
    """(3, V^k, V) counts the long way: each name padded with k '.', one example per
    symbol after them, in file order (which is the order `assign` follows)."""
    V = len(vocab)
    counts = np.zeros((3, V**k, V), dtype=np.int64)
    example = 0
    for name in names:
        chs = ["."] * k + list(name) + ["."]
        for i in range(k, len(chs)):
            row = 0
            for c in chs[i - k : i]:
                row = row * V + vocab.index(c)
            counts[assign[example], row, vocab.index(chs[i])] += 1
            example += 1
    assert example == len(assign)
    return counts


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("names", [NOTEBOOK_NAMES, TRICKY], ids=["notebook", "tricky"])
def test_kgram_counts_equal_a_direct_loop_over_names(names, k):
    vocab, pairs = encode(names)
    assign = split_pairs(pairs, 42, 0.8, 0.1, "pairs")
    expected = direct_counts(names, vocab, k, assign)
    assert np.array_equal(split_counts(pairs, assign, len(vocab), k), expected)
    # chunks shorter than a name: a chunk's first examples take their history from the last
    for chunk in (1, 2, 5):
        assert np.array_equal(split_counts(pairs, assign, len(vocab), k, chunk=chunk), expected)


@pytest.mark.skipif(not REAL_NAMES.exists(), reason=f"{REAL_NAMES} is absent")
def test_trigram_counts_of_the_real_list_equal_a_direct_loop():
    names = REAL_NAMES.read_text().split()
    vocab, pairs = encode(names)
    assign = split_pairs(pairs, 42, 0.8, 0.1, "pairs")
    got = split_counts(pairs, assign, len(vocab), 2, chunk=100_003)
    assert np.array_equal(got, direct_counts(names, vocab, 2, assign))
    # each split holds the bigram split's examples, whatever the context
    assert np.array_equal(got.sum(axis=(1, 2)), split_counts(pairs, assign, 27).sum(axis=(1, 2)))


def test_context_rows_read_the_k_previous_symbols_as_a_base_v_number():
    vocab, pairs = encode(["abc", "b"])  # '.', a, b, c
    # ..a .ab abc bc. | ..b .b. : rows oldest first, '.' padding at each name's start
    rows = context_rows(pairs[0], 3, 4)
    assert rows.tolist() == [0, 1, 1 * 4 + 2, (1 * 4 + 2) * 4 + 3, 0, 2]
    assert [label(r, 3, vocab) for r in rows] == ["...", "..a", ".ab", "abc", "...", "..b"]
    assert context_rows(pairs[0], 1, 4).tolist() == pairs[0].tolist()


@given(st.integers(2, 40), st.integers(1, 4), st.data())
def test_label_and_advance_agree(V, k, data):
    vocab = ["."] + [chr(0x61 + i) for i in range(V - 1)]
    n_rows = V**k
    row = data.draw(st.integers(0, n_rows - 1))
    symbol = data.draw(st.integers(1, V - 1))
    text = label(row, k, vocab)
    assert len(text) == k
    assert label(advance(row, symbol, n_rows, V), k, vocab) == text[1:] + vocab[symbol]


def test_a_w_past_the_limit_is_refused_naming_the_context_the_vocabulary_and_the_size():
    assert check_size(27, 3) == 27**3
    assert weights_needed(27, 4) == 27**5 <= MAX_WEIGHTS
    with pytest.raises(PipelineError) as e:
        check_size(27, 5)
    message = str(e.value)
    assert message.startswith("params.yaml: model.context = 5 with a vocabulary of 27 symbols")
    assert "27^5×27 W (3.87e+08 weights, 8 bytes each as float64)" in message
    assert f"the limit is {MAX_WEIGHTS:,} weights: use model.context <= 4" in message
    # a mistyped context is refused as fast, without building V**k
    with pytest.raises(PipelineError, match=r"27\^1000000001 weights.*use model.context <= 4"):
        check_size(27, 10**9)
    check_size(4096, 1)  # the largest vocabulary prepare accepts: the bigram always fits
    with pytest.raises(PipelineError, match="use model.context <= 1"):
        check_size(4096, 2)


@pytest.mark.parametrize("steps", [0, 1, 2, 10, 50])
def test_trigram_training_on_counts_equals_the_one_hot_loop_over_pair_indices(steps):
    stoi, xs, ys = notebook.build_context(NOTEBOOK_NAMES, 2)
    V = len(stoi)
    (xs_train, ys_train), _, _ = notebook.split(xs, ys)
    W_ref, losses_ref = notebook.train(xs_train, ys_train, V, steps, rows=V * V)
    vocab, pairs = encode(NOTEBOOK_NAMES)
    assign = split_pairs(pairs, 42, 0.8, 0.1, "pairs")
    counts = split_counts(pairs, assign, V, 2)[0]
    train = TrainParams(seed=42, lr=50, reg=0.01, steps=steps, checkpoint_every=50)
    W, curve = fit(counts, train)
    assert W.shape == (V * V, V) == (441, 21)
    np.testing.assert_allclose(W, W_ref.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(curve[:steps, 0], losses_ref, rtol=0, atol=1e-5)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 12), st.integers(1, 3), st.integers(0, 2**32), st.data())
def test_a_sampled_name_holds_only_symbols_of_the_vocabulary(V, k, seed, data):
    rng = np.random.default_rng(seed)
    # rows with zeros, a row that is all '.', rows that never end: all of them occur
    P = rng.random((V**k, V)) * (rng.random((V**k, V)) < 0.5)
    P[:, 0] += data.draw(st.sampled_from([0.0, 1e-3, 1.0]))
    P[P.sum(axis=1) == 0, 0] = 1.0
    P /= P.sum(axis=1, keepdims=True)
    for seq in sample(P, 5, seed, max_length=30):
        assert len(seq) <= 30
        assert all(1 <= i < V for i in seq)  # never '.', never past the vocabulary


def test_sampling_follows_the_context_not_only_the_last_symbol():
    # a trigram that spells "abba" and "aab": the symbol after 'b' depends on the one before
    vocab = [".", "a", "b"]
    V = 3
    P = np.full((V**2, V), 1 / V)
    follows = {"..": "a", ".a": "b", "ab": "b", "bb": "a", "ba": "."}
    for context, nxt in follows.items():
        row = vocab.index(context[0]) * V + vocab.index(context[1])
        P[row] = 0.0
        P[row, vocab.index(nxt)] = 1.0
    names = ["".join(vocab[i] for i in seq) for seq in sample(P, 3, 0, 50)]
    assert names == ["abba"] * 3


def test_the_kgram_table_shows_the_contexts_seen_most_frequent_first():
    vocab, pairs = encode(NOTEBOOK_NAMES)
    V = len(vocab)
    assign = split_pairs(pairs, 42, 0.8, 0.1, "pairs")
    fitted = split_counts(pairs, assign, V, 2)[0]
    rows, columns = table_layout(fitted, 2, contexts=10)
    totals = fitted.sum(axis=1)
    assert len(rows) == 10 and columns == list(range(V))  # every next symbol up to 60
    assert all(totals[r] > 0 for r in rows)
    assert [totals[r] for r in rows] == sorted((totals[r] for r in rows), reverse=True)
    assert totals[rows[-1]] >= max(t for i, t in enumerate(totals) if i not in rows)
    assert rows[0] == 0  # '..': every name starts there
    assert len(table_layout(fitted, 2)[0]) == 30  # TABLE_CONTEXTS
    P = np.full((V * V, V), 1 / V)
    lines = bigram_table(vocab, fitted, P, P, (rows, columns), 2).splitlines()
    assert len(lines) == 1 + 10 * V
    assert lines[1].startswith("..,.,")  # prev is the context's two symbols
    assert {line.split(",")[0] for line in lines[1:]} == {label(r, 2, vocab) for r in rows}
