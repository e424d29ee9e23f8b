"""stages/sample.py: seeded names drawn from the model, and their metrics."""

from safetensors.numpy import load_file

from bigram import artifacts
from tests.conftest import NOTEBOOK_NAMES, read_json, set_params, stage


def test_sample_draws_the_asked_number_of_names_in_the_vocabulary(trained_project, monkeypatch):
    monkeypatch.chdir(trained_project)
    drawn = open(artifacts.SAMPLES).read().split("\n")[:-1]
    assert len(drawn) == 20
    vocab = set(read_json(artifacts.VOCAB))
    assert all(set(name) <= vocab - {"."} and len(name) <= 50 for name in drawn)
    metrics = read_json(artifacts.metrics_path("sample"))
    assert metrics["mean_length"] == sum(map(len, drawn)) / 20
    assert metrics["novel"] == sum(n not in NOTEBOOK_NAMES for n in drawn) / 20


def near_greedy(drawn, vocab, W, within=0.5, max_length=50):
    """Whether every symbol of every name, and its end (a name cut at max_length has
    none), has a logit within `within` of the best in its context's row (the bigram's
    context is the last symbol)."""
    index = {s: i for i, s in enumerate(vocab)}
    for name in drawn:
        path = [0, *(index[c] for c in name), *([0] if len(name) < max_length else [])]
        if any(W[a, b] < W[a].max() - within for a, b in zip(path, path[1:])):
            return False
    return True


def test_a_low_temperature_keeps_to_the_likeliest_symbols(trained_project):
    vocab = read_json(trained_project / artifacts.VOCAB)
    W = load_file(str(trained_project / artifacts.MODEL))["W"]
    drawn = (trained_project / artifacts.SAMPLES).read_text().splitlines()
    assert not near_greedy(drawn, vocab, W)  # temperature 1: the model's own spread
    set_params(trained_project, sample__temperature=0.01)
    stage(trained_project, "sample")
    drawn = (trained_project / artifacts.SAMPLES).read_text().splitlines()
    # exp(-0.5 / 0.01) = e^-50: a symbol further from the best is never drawn
    assert near_greedy(drawn, vocab, W)
