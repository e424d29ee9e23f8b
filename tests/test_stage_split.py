"""stages/split.py: split ids and per-split counts that agree with each other."""

import numpy as np

from tests.conftest import read_json


def test_split_counts_are_the_pairs_of_each_split(trained_project):
    d = trained_project
    pairs = np.load(d / "data/prepared/pairs.npy")
    split = np.load(d / "data/split/split.npy")
    counts = np.load(d / "data/split/counts.npy")
    V = len(read_json(d / "data/prepared/vocab.json"))
    assert counts.shape == (3, V, V) and split.shape == (pairs.shape[1],)
    for i in range(3):
        expected = np.zeros((V, V), np.int64)
        np.add.at(expected, (pairs[0][split == i], pairs[1][split == i]), 1)
        assert np.array_equal(counts[i], expected)
    sizes = read_json(d / "metrics/split.json")["pairs_per_split"]
    assert sizes == {s: int((split == i).sum()) for i, s in enumerate(("train", "dev", "test"))}
    assert [link["stage"] for link in read_json(d / "data/split/lineage.json")] == [
        "prepare",
        "split",
    ]
