import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bigram.comparison import bigram_table, compare, count_probs, mean_kl
from bigram.model import distributions, log_softmax, sample, split_nlls
from bigram.names import encode, index_dtype
from bigram.splitting import name_of_pair, split_counts, split_pairs
from tests import notebook
from tests.conftest import NOTEBOOK_NAMES


def test_encode_matches_the_notebooks_vocabulary_and_pairs():
    stoi, xs, ys = notebook.build(NOTEBOOK_NAMES)
    vocab, pairs = encode(NOTEBOOK_NAMES)
    assert {c: i for i, c in enumerate(vocab)} == stoi
    assert pairs.dtype == np.uint8
    assert pairs[0].tolist() == xs.tolist() and pairs[1].tolist() == ys.tolist()


def test_encode_by_hand():
    vocab, pairs = encode(["ab", "b"])
    assert vocab == [".", "a", "b"]
    # .ab. .b.  ->  (.,a) (a,b) (b,.) (.,b) (b,.)
    assert pairs.T.tolist() == [[0, 1], [1, 2], [2, 0], [0, 2], [2, 0]]


def test_boundary_is_index_zero_even_when_symbols_sort_before_it():
    vocab, pairs = encode(["a-b", "c d"])  # '-' and ' ' sort before '.'
    assert vocab == [".", " ", "-", "a", "b", "c", "d"]
    assert pairs.shape[1] == 4 + 4


def test_vocabulary_is_data_driven_and_index_width_follows_it():
    names = ["Zoë", "anaïs"] + [chr(0x4E00 + i) for i in range(300)]
    vocab, pairs = encode(names)
    assert len(vocab) == 1 + len(set("".join(names)))
    assert pairs.dtype == np.uint16
    assert index_dtype(256) == np.uint8 and index_dtype(257) == np.uint16


def test_split_matches_the_notebooks_randperm_split():
    _, xs, ys = notebook.build(NOTEBOOK_NAMES)
    ref = notebook.split(xs, ys)
    vocab, pairs = encode(NOTEBOOK_NAMES)
    counts = split_counts(pairs, split_pairs(pairs, 42, 0.8, 0.1, "pairs"), len(vocab))
    for c, (sx, sy) in zip(counts, ref):
        expected = np.zeros_like(c)
        np.add.at(expected, (sx.numpy(), sy.numpy()), 1)
        assert np.array_equal(c, expected)


def test_split_by_names_keeps_each_name_in_one_split():
    vocab, pairs = encode(NOTEBOOK_NAMES)
    assign = split_pairs(pairs, 42, 0.5, 0.25, "names")
    owner = name_of_pair(pairs[0])
    for name in range(len(NOTEBOOK_NAMES)):
        assert len(set(assign[owner == name].tolist())) == 1
    per_name = [int(assign[owner == n][0]) for n in range(len(NOTEBOOK_NAMES))]
    assert [per_name.count(s) for s in (0, 1, 2)] == [10, 5, 5]


def test_nll_and_perplexity_equal_the_notebooks_cross_entropy():
    torch.manual_seed(0)
    W = torch.randn(21, 21)
    _, xs, ys = notebook.build(NOTEBOOK_NAMES)
    splits = notebook.split(xs, ys)
    vocab, pairs = encode(NOTEBOOK_NAMES)
    counts = split_counts(pairs, split_pairs(pairs, 42, 0.8, 0.1, "pairs"), len(vocab))
    nlls = split_nlls(counts, log_softmax(W.numpy()))
    for name, (sx, sy) in zip(("train", "dev", "test"), splits):
        assert nlls[name] == pytest.approx(F.cross_entropy(W[sx], sy).item(), abs=1e-6)
    assert nlls["all"] == pytest.approx(F.cross_entropy(W[xs], ys).item(), abs=1e-6)


def test_compare_by_hand():
    # Two symbols; counts on train [[1, 3], [2, 0]], add-1: P = [[2/6, 4/6], [3/4, 1/4]].
    counts = np.array([[[1, 3], [2, 0]], [[0, 1], [0, 0]], [[1, 0], [0, 0]]])
    W = np.log(np.array([[0.5, 0.5], [0.5, 0.5]], dtype=np.float32))
    metrics, p_count, p_neural, fitted = compare(counts, W, smoothing=1, fit="train")
    assert np.allclose(p_count, [[2 / 6, 4 / 6], [3 / 4, 1 / 4]])
    assert metrics["count"]["dev"] == pytest.approx(-math.log(4 / 6))
    assert metrics["count"]["test"] == pytest.approx(-math.log(2 / 6))
    assert metrics["neural"]["all"] == pytest.approx(math.log(2))
    assert metrics["max_abs_diff"] == pytest.approx(0.25)
    kl0 = 2 / 6 * math.log(2 / 6 / 0.5) + 4 / 6 * math.log(4 / 6 / 0.5)
    kl1 = 3 / 4 * math.log(3 / 4 / 0.5) + 1 / 4 * math.log(1 / 4 / 0.5)
    assert metrics["kl_count_neural"] == pytest.approx((kl0 + kl1) / 2)
    _, p_all, _, fitted_all = compare(counts, W, smoothing=1, fit="all")
    assert fitted_all.tolist() == [[2, 4], [2, 0]]
    assert np.allclose(p_all, count_probs(fitted_all, 1))
    assert mean_kl(p_all, np.log(p_all)) == pytest.approx(0)


def test_sample_follows_the_model_and_is_seeded():
    # A model that always goes . -> a -> b -> . (probabilities ~1).
    W = np.full((3, 3), -50.0, dtype=np.float32)
    W[0, 1] = W[1, 2] = W[2, 0] = 50.0
    assert sample(distributions(W)[1], 3, seed=0, max_length=10) == [[1, 2]] * 3
    P = distributions(np.zeros((5, 5), dtype=np.float32))[1]
    assert sample(P, 20, 7, 50) == sample(P, 20, 7, 50)
    assert sample(P, 20, 7, 50) != sample(P, 20, 8, 50)
    assert all(len(s) <= 3 for s in sample(P, 50, 1, max_length=3))


def test_split_counts_in_chunks_equal_one_pass():
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 30, size=(2, 10_007)).astype(np.uint8)
    assign = rng.integers(0, 3, size=10_007).astype(np.uint8)
    expected = np.zeros((3, 30, 30), dtype=np.int64)
    np.add.at(expected, (assign, pairs[0], pairs[1]), 1)
    assert np.array_equal(split_counts(pairs, assign, 30, chunk=1000), expected)
    assert np.array_equal(split_counts(pairs, assign, 30), expected)


def test_bigram_table_is_what_pandas_writes():
    import pandas as pd

    vocab = [".", " ", ",", '"', "'", "a", "é"]
    V = len(vocab)
    rng = np.random.default_rng(0)
    fitted, p_count, p_neural = (
        rng.integers(0, 1000, (V, V)),
        rng.random((V, V)),
        rng.random((V, V)) / 7,
    )
    frame = pd.DataFrame(
        {
            "prev": np.repeat(vocab, V),
            "next": np.tile(vocab, V),
            "count": fitted.ravel(),
            "p_count": p_count.ravel(),
            "p_neural": p_neural.ravel(),
        }
    )
    expected = frame.to_csv(index=False, float_format="%.8g", lineterminator="\n")
    assert bigram_table(vocab, fitted, p_count, p_neural) == expected
    back = pd.read_csv(io.StringIO(expected), keep_default_na=False)
    assert back["prev"].tolist() == list(np.repeat(vocab, V))


def test_the_bigram_table_caps_large_vocabularies_to_the_most_frequent_symbols():
    from bigram.comparison import table_symbols

    V = 100
    fitted = np.zeros((V, V), dtype=np.int64)
    fitted[0, 1:] = np.arange(1, V)  # symbol i starts after '.' i times: frequency grows with i
    assert table_symbols(fitted[:60, :60]) == list(range(60))
    kept = table_symbols(fitted)
    assert kept == [0, *range(V - 59, V)]  # '.', then the 59 most frequent, in vocabulary order
    vocab = ["."] + [chr(0x4E00 + i) for i in range(V - 1)]
    P = np.full((V, V), 1 / V)
    rows = bigram_table(vocab, fitted, P, P, kept).splitlines()
    assert len(rows) == 1 + 60 * 60
