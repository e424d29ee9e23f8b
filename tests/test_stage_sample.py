"""stages/sample.py: seeded names drawn from the model, and their metrics."""

from bigram import artifacts
from tests.conftest import NOTEBOOK_NAMES, read_json


def test_sample_draws_the_asked_number_of_names_in_the_vocabulary(trained_project, monkeypatch):
    monkeypatch.chdir(trained_project)
    drawn = open(artifacts.SAMPLES).read().split("\n")[:-1]
    assert len(drawn) == 20
    vocab = set(read_json(artifacts.VOCAB))
    assert all(set(name) <= vocab - {"."} and len(name) <= 50 for name in drawn)
    metrics = read_json(artifacts.metrics_path("sample"))
    assert metrics["mean_length"] == sum(map(len, drawn)) / 20
    assert metrics["novel"] == sum(n not in NOTEBOOK_NAMES for n in drawn) / 20
