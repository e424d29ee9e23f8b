"""stages/evaluate.py: the NLL of the model and of every checkpoint on every split."""

import math

import numpy as np

from bigram import artifacts, checkpoint
from bigram.model import log_softmax, split_nlls
from tests.conftest import read_json


def test_evaluate_scores_the_model_and_each_checkpoint(trained_project, monkeypatch):
    monkeypatch.chdir(trained_project)
    counts = np.load(artifacts.COUNTS)
    metrics = read_json(artifacts.metrics_path("evaluate"))
    expected = split_nlls(counts, log_softmax(checkpoint.read()[0]))
    assert {k: v["nll"] for k, v in metrics.items()} == expected
    for v in metrics.values():
        assert v["perplexity"] == pytest_approx(math.exp(v["nll"]))
    rows = open(artifacts.EVAL_STEPS).read().splitlines()
    assert rows[0] == "step,train,dev,test"
    for row, path in zip(rows[1:], artifacts.checkpoint_paths(), strict=True):
        W, meta = checkpoint.read(path)
        at = split_nlls(counts, log_softmax(W))
        assert row == f"{meta['step']},{at['train']:.7g},{at['dev']:.7g},{at['test']:.7g}"
    # Training lowers the train NLL (on 20 names dev and test may rise: 13 pairs each).
    assert float(rows[-1].split(",")[1]) < float(rows[1].split(",")[1])


def pytest_approx(x):
    import pytest

    return pytest.approx(x, rel=1e-15)
