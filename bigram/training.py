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


def initial_weights(rows: int, V: int, seed: int) -> np.ndarray:
    """torch.randn(rows, V) under `seed`, the notebook's initialisation (rows = V^k
    contexts), as float64."""
    return portable.randn(rows, V, seed).astype(np.float64)


# Bounds on one training run, so no params value can make it run for hours: at most
# this many checkpoints, and steps·(V^k·V + STEP_COST) weight updates (about 10 minutes
# here). A step also has a fixed cost (numpy calls, the loss): measured at ~55 µs on a
# 21×21 W against ~16 ns per weight update on a large one, and counted generously.
MAX_CHECKPOINTS = 10_000
BLOCK = 1 << 15  # elements of W a step works on at once: 256 KiB per float64 array
MAX_UPDATES = 2 * 10**10
STEP_COST = 10_000


def is_checkpoint(train: TrainParams, step: int) -> bool:
    """Whether a checkpoint is written at `step`: 0, every checkpoint_every, and the last."""
    return step % train.checkpoint_every == 0 or step == train.steps


def checkpoint_count(train: TrainParams) -> int:
    """How many steps is_checkpoint holds for, counted without going through them."""
    return train.steps // train.checkpoint_every + 1 + (train.steps % train.checkpoint_every > 0)


def checkpoint_steps(train: TrainParams) -> list[int]:
    """The steps a checkpoint is written at."""
    return [step for step in range(train.steps + 1) if is_checkpoint(train, step)]


def check_budget(shape: tuple[int, int], train: TrainParams, source: str = "params.yaml") -> None:
    """Refuse up front a run on a W of `shape` that would not finish in reasonable
    time or space."""
    rows, V = shape
    checkpoints = checkpoint_count(train)
    if checkpoints > MAX_CHECKPOINTS:
        raise PipelineError(
            f"{source}: train.steps = {train.steps:,} with train.checkpoint_every = "
            f"{train.checkpoint_every:,} writes {checkpoints:,} checkpoints; the limit is "
            f"{MAX_CHECKPOINTS:,}: raise train.checkpoint_every"
        )
    cost = train.steps * (rows * V + STEP_COST)
    if cost > MAX_UPDATES:
        raise PipelineError(
            f"{source}: train.steps = {train.steps:,} on a {rows}×{V} W costs {cost:.2g} weight "
            f"updates (each step's fixed cost counted as {STEP_COST:,}); the limit is "
            f"{MAX_UPDATES:.0e} (about ten minutes): use at most "
            f"{MAX_UPDATES // (rows * V + STEP_COST):,} steps"
        )


def fit(
    counts: np.ndarray,
    train: TrainParams,
    show_progress: bool = False,
    on_checkpoint: Callable[[int, np.ndarray, tuple[float, float, float]], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Plain gradient descent on W, initialised as torch.randn(rows, V) under
    train.seed, minimising cross-entropy over the counted examples + reg·mean(W²).
    `counts` is (rows, V): row = context (one previous symbol, or V^k contexts of k).

    Returns W (float32) after train.steps updates and the (steps+1, 3) curve of
    [loss, ce, reg] of W after k updates; calls on_checkpoint(k, float32 W, its
    (loss, ce, reg)) at each of checkpoint_steps(train), as soon as it is known.

    Equals the notebook's one-hot loop step for step (to float32 rounding), but
    each step costs O(rows·V): one-hot(xs) @ W only selects rows of W, so the loss
    and its gradient depend on the examples only through their counts.
    """
    steps, lr, reg = train.steps, train.lr, train.reg
    C = counts.astype(np.float64)
    n_rows, V = C.shape
    size = n_rows * V  # mean(W²)'s denominator: V·V for the bigram, as in the notebook
    n = C.sum()
    row_totals = C.sum(axis=1, keepdims=True)
    W = initial_weights(n_rows, V, train.seed)
    curve = np.empty((steps + 1, 3))
    tick = max(1, steps // 50)
    # A step works through W a block of rows at a time: each row's softmax and update
    # depend on that row alone, and blocks that stay in the CPU's cache keep the time per
    # step proportional to W's size (whole-W temporaries would make large W memory-bound).
    rows = max(1, BLOCK // V)
    for step in range(steps + 1):
        if show_progress and (step % tick == 0 or step == steps):
            bar("train", step, steps)
        before = W.astype(np.float32) if on_checkpoint and is_checkpoint(train, step) else None
        ce_sum = reg_sum = 0.0
        for r in range(0, n_rows, rows):
            W_rows, C_rows = W[r : r + rows], C[r : r + rows]
            logp, p = distributions(W_rows)
            ce_sum += (C_rows * logp).sum()
            reg_sum += (W_rows * W_rows).sum()
            if step < steps:
                # W -= lr·((row_total·softmax(W) - C)/n + 2·reg·W/size), in place: the
                # same IEEE operations in the same order, without whole-W temporaries.
                grad = p
                grad *= row_totals[r : r + rows]
                grad -= C_rows
                grad /= n
                grad += (2 * reg / size) * W_rows
                grad *= lr
                W_rows -= grad
        ce = -ce_sum / n
        reg_term = reg * reg_sum / size
        curve[step] = (ce + reg_term, ce, reg_term)
        # Diverged: the loss is not a number, or has grown past ten times its value
        # for the random initialisation, which no useful step size does.
        if not np.isfinite(curve[step, 0]) or curve[step, 0] > 10 * curve[0, 0]:
            raise PipelineError(
                f"train diverged at step {step} (loss {curve[step, 0]:.6g}); "
                f"lower train.lr (now {lr}) in params.yaml"
            )
        if on_checkpoint and before is not None:
            on_checkpoint(step, before, tuple(curve[step].tolist()))
    return W.astype(np.float32), curve
