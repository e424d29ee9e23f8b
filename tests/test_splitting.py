"""bigram.splitting: the notebook's seeded split and per-split counts."""

import numpy as np

from bigram.names import encode
from bigram.splitting import name_of_pair, split_counts, split_pairs
from tests import notebook
from tests.conftest import NOTEBOOK_NAMES


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


def test_split_counts_in_chunks_equal_one_pass():
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 30, size=(2, 10_007)).astype(np.uint8)
    assign = rng.integers(0, 3, size=10_007).astype(np.uint8)
    expected = np.zeros((3, 30, 30), dtype=np.int64)
    np.add.at(expected, (assign, pairs[0], pairs[1]), 1)
    assert np.array_equal(split_counts(pairs, assign, 30, chunk=1000), expected)
    assert np.array_equal(split_counts(pairs, assign, 30), expected)
