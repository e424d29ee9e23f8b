"""The notebook's own code (../shared/seed/day08-training-loops.md), kept as the
reference the pipeline is tested against. Only num_classes=27 is replaced by the
vocabulary size (the notebook's defect on its own 21-symbol list)."""

import torch
import torch.nn.functional as F


def build(words):
    chars = sorted(list(set("".join(words))))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    xs, ys = [], []
    for w in words:
        chs = ["."] + list(w) + ["."]
        for c1, c2 in zip(chs[:-1], chs[1:]):
            xs.append(stoi[c1])
            ys.append(stoi[c2])
    return stoi, torch.tensor(xs), torch.tensor(ys)


def split(xs, ys):
    torch.manual_seed(42)
    perm = torch.randperm(len(xs))
    n = len(xs)
    n_train = int(0.8 * n)
    n_dev = int(0.1 * n)
    train_idx = perm[:n_train]
    dev_idx = perm[n_train : n_train + n_dev]
    test_idx = perm[n_train + n_dev :]
    return (xs[train_idx], ys[train_idx]), (xs[dev_idx], ys[dev_idx]), (xs[test_idx], ys[test_idx])


def forward(xs, W):
    xenc = F.one_hot(xs, num_classes=W.shape[0]).float()
    logits = xenc @ W
    probs = F.softmax(logits, dim=1)
    return logits, probs


def train(xs, ys, V, steps, lr=50.0, reg=0.01, seed=42):
    """Returns W after `steps` updates and the loss printed at each step."""
    torch.manual_seed(seed)
    W = torch.randn(V, V, requires_grad=True)
    losses = []
    for step in range(steps):
        logits, _ = forward(xs, W)
        loss_ce = F.cross_entropy(logits, ys)
        loss_reg = reg * (W**2).mean()
        loss = loss_ce + loss_reg
        losses.append(loss.item())
        W.grad = None
        loss.backward()
        W.data -= lr * W.grad
    return W.detach(), losses
