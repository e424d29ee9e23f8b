"""Gradient descent on W: the notebook's training loop, on bigram counts."""

import numpy as np

from bigram.console import PipelineError, bar
from bigram.params import TrainParams


def fit(
    counts: np.ndarray, train: TrainParams, show_progress: bool = False
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Plain gradient descent on W, initialised torch.randn(V, V) under
    train.seed, minimising cross-entropy over the counted pairs + reg·mean(W²).

    Returns W (float32) after train.steps updates, the (steps+1, 3) curve of
    [loss, ce, reg] of W after k updates, and {k: W after k updates} for
    k = 0, checkpoint_every, 2·checkpoint_every, ... and steps.

    Equals the notebook's one-hot loop step for step, but each step costs
    O(V²): one-hot(xs) @ W only selects rows of W, so the loss and its gradient
    depend on the pairs only through their counts.
    """
    import torch

    steps, every, lr, reg = train.steps, train.checkpoint_every, train.lr, train.reg
    C = torch.from_numpy(counts).to(torch.float32)
    V = C.shape[0]
    n = float(counts.sum())
    row_totals = C.sum(dim=1, keepdim=True)
    W = torch.randn(V, V, generator=torch.Generator().manual_seed(train.seed))
    curve = np.empty((steps + 1, 3))
    snapshots = {}
    tick = max(1, steps // 50)
    for step in range(steps + 1):
        if show_progress and (step % tick == 0 or step == steps):
            bar("train", step, steps)
        logp = torch.log_softmax(W, dim=1)
        ce = -(C * logp).sum() / n
        reg_term = reg * (W * W).mean()
        loss = ce + reg_term
        curve[step] = (loss.item(), ce.item(), reg_term.item())
        # Diverged: the loss is not a number, or has grown past ten times its value
        # for the random initialisation, which no useful step size does.
        if not np.isfinite(curve[step, 0]) or curve[step, 0] > 10 * curve[0, 0]:
            raise PipelineError(
                f"train diverged at step {step} (loss {curve[step, 0]:.6g}); "
                f"lower train.lr (now {lr}) in params.yaml"
            )
        if step % every == 0 or step == steps:
            snapshots[step] = W.numpy().copy()
        if step == steps:
            break
        # d(ce)/dW = (row_total·softmax(W) - C)/n;  d(reg)/dW = 2·reg·W/V².
        grad = (row_totals * logp.exp() - C) / n + (2 * reg / (V * V)) * W
        W -= lr * grad
    return W.numpy(), curve, snapshots
