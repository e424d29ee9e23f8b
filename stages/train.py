"""Stage 3: train the V×V weight matrix W by gradient descent on the train split."""
import numpy as np

from stages import artifacts, params
from stages.cli import PipelineError, progress, run


def fit(counts, seed, lr, reg, steps):
    """Plain gradient descent on W, initialised torch.randn(V, V) under `seed`,
    minimising cross-entropy over the counted pairs + reg·mean(W²).

    Returns W (float32) and the (steps+1, 3) curve of [loss, ce, reg] of W
    after k updates. Equals the notebook's one-hot loop step for step, but each
    step costs O(V²): one-hot(xs) @ W only selects rows of W, so the loss and
    its gradient depend on the pairs only through their counts.
    """
    import torch
    C = torch.from_numpy(counts).to(torch.float32)
    V = C.shape[0]
    n = float(counts.sum())
    row_totals = C.sum(dim=1, keepdim=True)
    W = torch.randn(V, V, generator=torch.Generator().manual_seed(seed))
    curve = np.empty((steps + 1, 3))
    for step in range(steps + 1):
        logp = torch.log_softmax(W, dim=1)
        ce = -(C * logp).sum() / n
        rg = reg * (W * W).mean()
        loss = ce + rg
        curve[step] = (loss.item(), ce.item(), rg.item())
        if not np.isfinite(curve[step, 0]):
            raise PipelineError(f"train diverged at step {step} (loss {curve[step, 0]}); "
                                f"lower train.lr (now {lr}) in params.yaml")
        if step == steps:
            break
        # d(ce)/dW = (row_total·softmax(W) - C)/n;  d(rg)/dW = 2·reg·W/V².
        grad = (row_totals * logp.exp() - C) / n + (2 * reg / (V * V)) * W
        W -= lr * grad
    return W.numpy(), curve


def main():
    p = params.load()
    t = p["train"]
    vocab = artifacts.read_vocab()
    counts = artifacts.read_counts(len(vocab))
    W, curve = fit(counts[0], t["seed"], t["lr"], t["reg"], t["steps"])
    loss, ce, rg = (float(v) for v in curve[-1])
    meta = {"vocab": vocab, "step": t["steps"], "loss": loss,
            "params": {k: p[k] for k in ("data", "split", "train")}}
    artifacts.save_checkpoint(artifacts.MODEL, W, meta)
    rows = "".join(f"{k},{a:.7g},{b:.7g},{c:.7g}\n" for k, (a, b, c) in enumerate(curve))
    artifacts.write_text(artifacts.LOSS_CURVE, "step,loss,ce,reg\n" + rows)
    artifacts.write_json(artifacts.metrics_path("train"), {"loss": loss, "ce": ce, "reg": rg})
    progress("train", f"{t['steps']} steps at lr {t['lr']}: loss {curve[0, 0]:.4f} -> {loss:.4f}")


if __name__ == "__main__":
    run(main)
