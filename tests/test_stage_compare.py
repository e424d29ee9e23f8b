"""stages/compare.py: the metrics of bigram.comparison and the bigram table."""

import numpy as np

from bigram import artifacts, checkpoint
from bigram.comparison import compare
from tests.conftest import read_json


def test_compare_writes_the_comparison_of_the_model_and_the_counts(trained_project, monkeypatch):
    monkeypatch.chdir(trained_project)
    counts = np.load(artifacts.COUNTS)
    expected, *_ = compare(counts, checkpoint.read()[0], 1, "train")
    assert read_json(artifacts.metrics_path("compare")) == expected
    V = counts.shape[1]
    rows = open(artifacts.BIGRAMS).read().splitlines()
    assert rows[0] == "prev,next,count,p_count,p_neural" and len(rows) == 1 + V * V
