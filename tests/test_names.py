"""bigram.names: names files into a vocabulary and bigram pairs."""

import numpy as np

from bigram.names import encode, index_dtype
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
