"""The neural bigram model as pure numpy functions: log-probabilities from W,
negative log-likelihood of counted pairs, and seeded sampling."""

import numpy as np

from bigram.artifacts import SPLITS


def log_softmax(W: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of W in float64: log P(next | previous)."""
    z = W.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def nll(counts: np.ndarray, logp: np.ndarray) -> float:
    """Mean negative log-likelihood of the pairs counted in `counts`."""
    return float(-(counts * logp).sum() / counts.sum())


def split_nlls(counts: np.ndarray, logp: np.ndarray) -> dict[str, float]:
    """Mean NLL on each split of the (3, V, V) split counts, and on all pairs."""
    out = {name: nll(c, logp) for name, c in zip(SPLITS, counts)}
    out["all"] = nll(counts.sum(axis=0), logp)
    return out


def sample(logp: np.ndarray, count: int, seed: int, max_length: int) -> list[list[int]]:
    """`count` index sequences drawn from the bigram model, each from '.' until
    '.' (or max_length symbols); numpy's PCG64 under `seed`, so reruns agree."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(np.exp(logp), axis=1)
    out = []
    for _ in range(count):
        ix, seq = 0, []
        while len(seq) < max_length:
            row = cdf[ix]
            ix = min(int(np.searchsorted(row, rng.random() * row[-1], side="right")), len(row) - 1)
            if ix == 0:
                break
            seq.append(ix)
        out.append(seq)
    return out
