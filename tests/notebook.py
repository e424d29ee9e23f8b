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


def build_context(words, k):
    """The exercises' k-gram (E01 for k = 2): each name padded with k '.' in front, as
    makemore does, and xs the pair index of the k previous symbols, x1·V + x2 for k = 2."""
    chars = sorted(list(set("".join(words))))
    stoi = {".": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    V = len(stoi)
    xs, ys = [], []
    for w in words:
        chs = ["."] * k + list(w) + ["."]
        for i in range(k, len(chs)):
            index = 0
            for c in chs[i - k : i]:
                index = index * V + stoi[c]
            xs.append(index)
            ys.append(stoi[chs[i]])
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


def train(xs, ys, V, steps, lr=50.0, reg=0.01, seed=42, rows=None):
    """Returns W after `steps` updates and the loss printed at each step. `rows` is the
    one-hot's width: V for the bigram, V**k for a context of k symbols (build_context)."""
    torch.manual_seed(seed)
    W = torch.randn(rows or V, V, requires_grad=True)
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
