"""bigram.model: probabilities from W, NLL, sampling."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bigram.model import distributions, log_softmax, sample, split_nlls
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


def test_sample_follows_the_model_and_is_seeded():
    # A model that always goes . -> a -> b -> . (probabilities ~1).
    W = np.full((3, 3), -50.0, dtype=np.float32)
    W[0, 1] = W[1, 2] = W[2, 0] = 50.0
    assert sample(distributions(W)[1], 3, seed=0, max_length=10) == [[1, 2]] * 3
    P = distributions(np.zeros((5, 5), dtype=np.float32))[1]
    assert sample(P, 20, 7, 50) == sample(P, 20, 7, 50)
    assert sample(P, 20, 7, 50) != sample(P, 20, 8, 50)
    assert all(len(s) <= 3 for s in sample(P, 50, 1, max_length=3))


def test_sampling_reports_progress_without_changing_the_names():
    P = np.full((3, 3), 1 / 3)
    seen = []
    with_progress = sample(P, 120, 7, 10, progress=seen.append)
    assert with_progress == sample(P, 120, 7, 10)
    assert seen[0] == 0 and seen[-1] == 120 and seen == sorted(seen)
    assert len(seen) == 120 // 2 + 1  # every 2 names (2% of 120), then the end
