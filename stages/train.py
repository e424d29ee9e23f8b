"""Stage 3: train the V×V weight matrix W by gradient descent on the train split."""
import os

import numpy as np

from stages import artifacts, lineage, params
from stages.cli import PipelineError, bar, progress, run


def fit(counts, seed, lr, reg, steps, every=None, show_progress=False):
    """Plain gradient descent on W, initialised torch.randn(V, V) under `seed`,
    minimising cross-entropy over the counted pairs + reg·mean(W²).

    Returns W (float32) after `steps` updates, the (steps+1, 3) curve of
    [loss, ce, reg] of W after k updates, and {k: W after k updates} for
    k = 0, every, 2·every, ... and `steps` (empty if every is None).

    Equals the notebook's one-hot loop step for step, but each step costs
    O(V²): one-hot(xs) @ W only selects rows of W, so the loss and its gradient
    depend on the pairs only through their counts.
    """
    import torch
    C = torch.from_numpy(counts).to(torch.float32)
    V = C.shape[0]
    n = float(counts.sum())
    row_totals = C.sum(dim=1, keepdim=True)
    W = torch.randn(V, V, generator=torch.Generator().manual_seed(seed))
    curve = np.empty((steps + 1, 3))
    snapshots = {}
    tick = max(1, steps // 50)
    for step in range(steps + 1):
        if show_progress and (step % tick == 0 or step == steps):
            bar("train", step, steps)
        logp = torch.log_softmax(W, dim=1)
        ce = -(C * logp).sum() / n
        rg = reg * (W * W).mean()
        loss = ce + rg
        curve[step] = (loss.item(), ce.item(), rg.item())
        # Diverged: the loss is not a number, or has grown past ten times its value
        # for the random initialisation, which no useful step size does.
        if not np.isfinite(curve[step, 0]) or curve[step, 0] > 10 * curve[0, 0]:
            raise PipelineError(f"train diverged at step {step} (loss {curve[step, 0]:.6g}); "
                                f"lower train.lr (now {lr}) in params.yaml")
        if every and (step % every == 0 or step == steps):
            snapshots[step] = W.numpy().copy()
        if step == steps:
            break
        # d(ce)/dW = (row_total·softmax(W) - C)/n;  d(rg)/dW = 2·reg·W/V².
        grad = (row_totals * logp.exp() - C) / n + (2 * reg / (V * V)) * W
        W -= lr * grad
    return W.numpy(), curve, snapshots


def main():
    p = params.load()
    t = p["train"]
    vocab = artifacts.read_vocab()
    counts = artifacts.read_counts(len(vocab))
    chain = artifacts.read_json(artifacts.SPLIT_LINEAGE)
    lineage.check_recorded(chain, [artifacts.VOCAB, artifacts.COUNTS], artifacts.SPLIT_LINEAGE)
    chain = chain + [lineage.record("train", {"train": t}, [artifacts.VOCAB, artifacts.COUNTS], [])]
    W, curve, snapshots = fit(counts[0], t["seed"], t["lr"], t["reg"], t["steps"],
                              every=t["checkpoint_every"], show_progress=True)
    # Every checkpoint carries its whole lineage and the digest of the one
    # before it, so a copy found anywhere can still be audited (stages.lineage).
    common = {"vocab": vocab, "lineage": chain, "code": lineage.code_identity(),
              "versions": lineage.versions()}
    written = {artifacts.checkpoint_path(step) for step in snapshots}
    for stale in set(artifacts.checkpoint_paths()) - written:  # from an earlier, longer run
        os.unlink(stale)
    previous = None
    for step, W_step in snapshots.items():
        loss, ce, rg = (float(v) for v in curve[step])
        meta = {**common, "step": step, "loss": loss, "ce": ce, "reg": rg, "previous": previous}
        data = artifacts.checkpoint_bytes(W_step, meta)
        path = artifacts.checkpoint_path(step)
        artifacts.write_bytes(path, data)
        previous = {"path": path, "md5": artifacts.md5_bytes(data)}
    artifacts.write_bytes(artifacts.MODEL, data)
    rows = "".join(f"{k},{a:.7g},{b:.7g},{c:.7g}\n" for k, (a, b, c) in enumerate(curve))
    artifacts.write_text(artifacts.LOSS_CURVE, "step,loss,ce,reg\n" + rows)
    artifacts.write_json(artifacts.metrics_path("train"), {"loss": loss, "ce": ce, "reg": rg})
    progress("train", f"{t['steps']} steps at lr {t['lr']}: loss {curve[0, 0]:.4f} -> {loss:.4f}; "
             f"{len(snapshots)} checkpoints")


if __name__ == "__main__":
    run(main)
