"""Gradient descent on W: the notebook's training loop, on bigram counts.

Portable by construction: float64 numpy with basic IEEE operations, numpy's sums
and bigram.portable's exp/log only, so W's bytes are the same on every CPU and
with any number of threads (no BLAS, no torch kernels).
"""

import numpy as np

from bigram import portable
from bigram.console import PipelineError, bar
from bigram.model import distributions
from bigram.params import TrainParams


def initial_weights(V: int, seed: int) -> np.ndarray:
    """torch.randn(V, V) under `seed`, the notebook's initialisation, as float64."""
    return portable.randn(V, V, seed).astype(np.float64)


def fit(
    counts: np.ndarray, train: TrainParams, show_progress: bool = False, keep: bool = True
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Plain gradient descent on W, initialised as torch.randn(V, V) under
    train.seed, minimising cross-entropy over the counted pairs + reg·mean(W²).

    Returns W (float32) after train.steps updates, the (steps+1, 3) curve of
    [loss, ce, reg] of W after k updates, and (with `keep`) {k: float32 W after
    k updates} for k = 0, checkpoint_every, 2·checkpoint_every, ... and steps.

    Equals the notebook's one-hot loop step for step (to float32 rounding), but
    each step costs O(V²): one-hot(xs) @ W only selects rows of W, so the loss
    and its gradient depend on the pairs only through their counts.
    """
    steps, every, lr, reg = train.steps, train.checkpoint_every, train.lr, train.reg
    C = counts.astype(np.float64)
    V = C.shape[0]
    n = C.sum()
    row_totals = C.sum(axis=1, keepdims=True)
    W = initial_weights(V, train.seed)
    curve = np.empty((steps + 1, 3))
    snapshots = {}
    tick = max(1, steps // 50)
    for step in range(steps + 1):
        if show_progress and (step % tick == 0 or step == steps):
            bar("train", step, steps)
        logp, p = distributions(W)
        ce = -(C * logp).sum() / n
        reg_term = reg * (W * W).sum() / (V * V)
        curve[step] = (ce + reg_term, ce, reg_term)
        # Diverged: the loss is not a number, or has grown past ten times its value
        # for the random initialisation, which no useful step size does.
        if not np.isfinite(curve[step, 0]) or curve[step, 0] > 10 * curve[0, 0]:
            raise PipelineError(
                f"train diverged at step {step} (loss {curve[step, 0]:.6g}); "
                f"lower train.lr (now {lr}) in params.yaml"
            )
        if keep and (step % every == 0 or step == steps):
            snapshots[step] = W.astype(np.float32)
        if step == steps:
            break
        # d(ce)/dW = (row_total·softmax(W) - C)/n;  d(reg)/dW = 2·reg·W/V².
        W = W - lr * ((row_totals * p - C) / n + (2 * reg / (V * V)) * W)
    return W.astype(np.float32), curve, snapshots
