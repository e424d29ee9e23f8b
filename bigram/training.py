"""Gradient descent on W: the notebook's training loop, on bigram counts.

Portable by construction: float64 numpy with basic IEEE operations, numpy's sums
and bigram.portable's exp/log only, so W's bytes are the same on every CPU and
with any number of threads (no BLAS, no torch kernels).
"""

from collections.abc import Callable

import numpy as np

from bigram import portable
from bigram.console import PipelineError, bar
from bigram.model import distributions
from bigram.params import TrainParams


def initial_weights(V: int, seed: int) -> np.ndarray:
    """torch.randn(V, V) under `seed`, the notebook's initialisation, as float64."""
    return portable.randn(V, V, seed).astype(np.float64)


# Bounds on one training run, so no params value can make it run for hours: at most
# this many checkpoints, and steps·V² weight updates (about 10 minutes here).
MAX_CHECKPOINTS = 10_000
BLOCK = 1 << 15  # elements of W a step works on at once: 256 KiB per float64 array
MAX_UPDATES = 2 * 10**10


def checkpoint_steps(train: TrainParams) -> list[int]:
    """The steps a checkpoint is written at: 0, every checkpoint_every, and the last."""
    steps = list(range(0, train.steps + 1, train.checkpoint_every))
    return steps if steps[-1] == train.steps else [*steps, train.steps]


def check_budget(V: int, train: TrainParams, source: str = "params.yaml") -> None:
    """Refuse up front a run that would not finish in reasonable time or space."""
    checkpoints = (
        train.steps // train.checkpoint_every + 1 + (train.steps % train.checkpoint_every > 0)
    )
    if checkpoints > MAX_CHECKPOINTS:
        raise PipelineError(
            f"{source}: train.steps = {train.steps:,} with train.checkpoint_every = "
            f"{train.checkpoint_every:,} writes {checkpoints:,} checkpoints; the limit is "
            f"{MAX_CHECKPOINTS:,}: raise train.checkpoint_every"
        )
    if train.steps * V * V > MAX_UPDATES:
        raise PipelineError(
            f"{source}: train.steps = {train.steps:,} on a {V}×{V} W is "
            f"{train.steps * V * V:.2g} weight updates; the limit is {MAX_UPDATES:.0e} "
            f"(about ten minutes): use at most {MAX_UPDATES // (V * V):,} steps"
        )


def fit(
    counts: np.ndarray,
    train: TrainParams,
    show_progress: bool = False,
    on_checkpoint: Callable[[int, np.ndarray, tuple[float, float, float]], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Plain gradient descent on W, initialised as torch.randn(V, V) under
    train.seed, minimising cross-entropy over the counted pairs + reg·mean(W²).

    Returns W (float32) after train.steps updates and the (steps+1, 3) curve of
    [loss, ce, reg] of W after k updates; calls on_checkpoint(k, float32 W, its
    (loss, ce, reg)) at each of checkpoint_steps(train), as soon as it is known.

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
    tick = max(1, steps // 50)
    # A step works through W a block of rows at a time: each row's softmax and update
    # depend on that row alone, and blocks that stay in the CPU's cache keep the time per
    # step proportional to V² (whole V×V temporaries would make large V memory-bound).
    rows = max(1, BLOCK // V)
    for step in range(steps + 1):
        if show_progress and (step % tick == 0 or step == steps):
            bar("train", step, steps)
        keep = on_checkpoint is not None and (step % every == 0 or step == steps)
        before = W.astype(np.float32) if keep else None
        ce_sum = reg_sum = 0.0
        for r in range(0, V, rows):
            W_rows, C_rows = W[r : r + rows], C[r : r + rows]
            logp, p = distributions(W_rows)
            ce_sum += (C_rows * logp).sum()
            reg_sum += (W_rows * W_rows).sum()
            if step < steps:
                # W -= lr·((row_total·softmax(W) - C)/n + 2·reg·W/V²), in place: the
                # same IEEE operations in the same order, without V×V temporaries.
                grad = p
                grad *= row_totals[r : r + rows]
                grad -= C_rows
                grad /= n
                grad += (2 * reg / (V * V)) * W_rows
                grad *= lr
                W_rows -= grad
        ce = -ce_sum / n
        reg_term = reg * reg_sum / (V * V)
        curve[step] = (ce + reg_term, ce, reg_term)
        # Diverged: the loss is not a number, or has grown past ten times its value
        # for the random initialisation, which no useful step size does.
        if not np.isfinite(curve[step, 0]) or curve[step, 0] > 10 * curve[0, 0]:
            raise PipelineError(
                f"train diverged at step {step} (loss {curve[step, 0]:.6g}); "
                f"lower train.lr (now {lr}) in params.yaml"
            )
        if keep:
            on_checkpoint(step, before, tuple(curve[step].tolist()))
    return W.astype(np.float32), curve
