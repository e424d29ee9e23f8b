"""bigram.training: gradient descent on counts equals the notebook's one-hot loop."""

import numpy as np
import pytest

from bigram.console import PipelineError
from bigram.names import encode
from bigram.params import TrainParams
from bigram.splitting import split_counts, split_pairs
from bigram.training import check_budget, checkpoint_count, checkpoint_steps, fit
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
    W, curve = fit(pipeline_train_counts(NOTEBOOK_NAMES), tp(steps=steps))
    assert W.shape == (V, V) == (21, 21)
    np.testing.assert_allclose(W, W_ref.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(curve[:steps, 0], losses_ref, rtol=0, atol=1e-5)


def test_loss_curve_terms_add_up_and_decrease():
    W, curve = fit(pipeline_train_counts(NOTEBOOK_NAMES), tp())
    np.testing.assert_allclose(curve[:, 0], curve[:, 1] + curve[:, 2], rtol=1e-6)
    # The final regulariser term is reg·mean(W²) of the returned W.
    assert curve[-1, 2] == pytest.approx(0.01 * float((W.astype(np.float64) ** 2).mean()), rel=1e-5)
    assert curve[-1, 0] < curve[0, 0]


def test_training_that_diverges_stops_with_the_step_and_advice():
    with pytest.raises(PipelineError, match=r"diverged at step \d+ .*lower train.lr"):
        fit(pipeline_train_counts(NOTEBOOK_NAMES), tp(lr=1e6))


def test_seed_changes_the_initialisation_and_reruns_are_identical():
    counts = pipeline_train_counts(NOTEBOOK_NAMES)
    a, _ = fit(counts, tp(seed=1, lr=10, steps=5))
    b, _ = fit(counts, tp(seed=1, lr=10, steps=5))
    c, _ = fit(counts, tp(seed=2, lr=10, steps=5))
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("steps", "every", "expected"),
    [(120, 50, [0, 50, 100, 120]), (100, 50, [0, 50, 100]), (1, 50, [0, 1]), (3, 1, [0, 1, 2, 3])],
)
def test_the_checkpoint_schedule_and_its_count_agree(steps, every, expected):
    assert checkpoint_steps(tp(steps=steps, every=every)) == expected
    assert checkpoint_count(tp(steps=steps, every=every)) == len(expected)


def test_checkpoints_are_the_weights_at_each_checkpoint_step():
    counts = pipeline_train_counts(NOTEBOOK_NAMES)
    seen = {}
    W, curve = fit(
        counts, tp(lr=50, steps=120), on_checkpoint=lambda k, Wk, t: seen.update({k: (Wk, t)})
    )
    assert sorted(seen) == [0, 50, 100, 120] == checkpoint_steps(tp(steps=120))
    assert seen[120][0].tobytes() == W.tobytes()
    for step in (0, 50, 100):
        alone, alone_curve = fit(counts, tp(lr=50, steps=step))
        assert seen[step][0].tobytes() == alone.tobytes()
        assert seen[step][1] == tuple(alone_curve[-1].tolist()) == tuple(curve[step].tolist())


def test_runs_that_would_not_finish_in_time_are_refused_up_front():
    # The bound is steps·(rows·V + 10,000) ≤ 2e10: each step's fixed cost counts too.
    with pytest.raises(PipelineError, match=r"writes 10,000,001 checkpoints; the limit is 10,000"):
        check_budget((27, 27), tp(steps=10_000_000, every=1))
    # 10M steps on the toy list's 21×21 W: 47 minutes when it was allowed
    with pytest.raises(
        PipelineError,
        match=r"on a 21×21 W costs 1e\+11 weight updates \(each "
        r"step's fixed cost counted as 10,000\).*use at most 1,915,525 steps",
    ):
        check_budget((21, 21), tp(steps=10_000_000, every=10_000))
    check_budget((21, 21), tp(steps=1_915_525, every=10_000))  # 2e10 // (441 + 10,000)
    with pytest.raises(PipelineError, match=r"the limit is 2e\+10 .*use at most 2,219 steps"):
        check_budget((3000, 3000), tp(steps=10_000))
    check_budget((3000, 3000), tp(steps=2219))  # 2e10 // 9,010,000
    # a trigram's W on 27 symbols is 729×27: the bound counts all of its weights
    with pytest.raises(PipelineError, match=r"on a 19683×27 W .*use at most 36,938 steps"):
        check_budget((27**3, 27), tp(steps=40_000, every=1000))


def test_initial_weights_are_the_notebooks_torch_randn():
    import torch

    from bigram.training import initial_weights

    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("torch.randn itself differs without AVX2; portable.randn follows AVX2")
    for rows, V, seed in ((2, 2, 0), (21, 21, 42), (27, 27, 42), (40, 40, 7), (729, 27, 42)):
        expected = torch.randn(rows, V, generator=torch.Generator().manual_seed(seed))
        got = initial_weights(rows, V, seed).astype(np.float32)
        assert got.tobytes() == expected.numpy().tobytes()


def test_working_through_w_in_blocks_of_rows_changes_no_weight(monkeypatch):
    import bigram.training as training

    counts = np.random.default_rng(1).integers(0, 50, (40, 40))
    whole, whole_curve = fit(counts, tp(steps=30))
    monkeypatch.setattr(training, "BLOCK", 3 * 40)  # three rows at a time
    blocked, blocked_curve = fit(counts, tp(steps=30))
    assert blocked.tobytes() == whole.tobytes()
    # The loss sums blocks in another order: equal to rounding, not necessarily to the bit.
    np.testing.assert_allclose(blocked_curve, whole_curve, rtol=1e-13)
