"""bigram.training: gradient descent on counts equals the notebook's one-hot loop."""

import numpy as np
import pytest

from bigram.console import PipelineError
from bigram.names import encode
from bigram.params import TrainParams
from bigram.splitting import split_counts, split_pairs
from bigram.training import fit
from tests import notebook
from tests.conftest import NOTEBOOK_NAMES


def tp(seed=42, lr=50.0, reg=0.01, steps=200, every=50):
    return TrainParams(seed=seed, lr=lr, reg=reg, steps=steps, checkpoint_every=every)


def notebook_train_split(words):
    stoi, xs, ys = notebook.build(words)
    return len(stoi), notebook.split(xs, ys)[0]


def pipeline_train_counts(words):
    vocab, pairs = encode(words)
    assign = split_pairs(pairs, seed=42, train=0.8, dev=0.1, unit="pairs")
    return split_counts(pairs, assign, len(vocab))[0]


@pytest.mark.parametrize("steps", [0, 1, 2, 10, 50, 200])
def test_counts_training_equals_the_notebooks_one_hot_loop(steps):
    V, (xs, ys) = notebook_train_split(NOTEBOOK_NAMES)
    W_ref, losses_ref = notebook.train(xs, ys, V, steps)
    W, curve, _ = fit(pipeline_train_counts(NOTEBOOK_NAMES), tp(steps=steps))
    assert W.shape == (V, V) == (21, 21)
    np.testing.assert_allclose(W, W_ref.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(curve[:steps, 0], losses_ref, rtol=0, atol=1e-5)


def test_loss_curve_terms_add_up_and_decrease():
    W, curve, _ = fit(pipeline_train_counts(NOTEBOOK_NAMES), tp())
    np.testing.assert_allclose(curve[:, 0], curve[:, 1] + curve[:, 2], rtol=1e-6)
    # The final regulariser term is reg·mean(W²) of the returned W.
    assert curve[-1, 2] == pytest.approx(0.01 * float((W.astype(np.float64) ** 2).mean()), rel=1e-5)
    assert curve[-1, 0] < curve[0, 0]


def test_training_that_diverges_stops_with_the_step_and_advice():
    with pytest.raises(PipelineError, match=r"diverged at step \d+ .*lower train.lr"):
        fit(pipeline_train_counts(NOTEBOOK_NAMES), tp(lr=1e6))


def test_seed_changes_the_initialisation_and_reruns_are_identical():
    counts = pipeline_train_counts(NOTEBOOK_NAMES)
    a, _, _ = fit(counts, tp(seed=1, lr=10, steps=5))
    b, _, _ = fit(counts, tp(seed=1, lr=10, steps=5))
    c, _, _ = fit(counts, tp(seed=2, lr=10, steps=5))
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)


def test_snapshots_are_the_weights_at_each_checkpoint_step():
    counts = pipeline_train_counts(NOTEBOOK_NAMES)
    W, _, snaps = fit(counts, tp(lr=50, steps=120))
    assert sorted(snaps) == [0, 50, 100, 120]
    assert snaps[120].tobytes() == W.tobytes()
    for step in (0, 50, 100):
        alone, _, _ = fit(counts, tp(lr=50, steps=step))
        assert snaps[step].tobytes() == alone.tobytes()


def test_initial_weights_are_the_notebooks_torch_randn():
    import torch

    from bigram.training import initial_weights

    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("torch.randn itself differs without AVX2; portable.randn follows AVX2")
    for V, seed in ((2, 0), (21, 42), (27, 42), (40, 7)):
        expected = torch.randn(V, V, generator=torch.Generator().manual_seed(seed))
        assert initial_weights(V, seed).astype(np.float32).tobytes() == expected.numpy().tobytes()
