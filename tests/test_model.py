"""bigram.model: probabilities from W, NLL."""

import pytest
import torch
import torch.nn.functional as F

from bigram.model import log_softmax, split_nlls
from bigram.names import encode
from bigram.splitting import split_counts, split_pairs
from tests import notebook
from tests.conftest import NOTEBOOK_NAMES


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
