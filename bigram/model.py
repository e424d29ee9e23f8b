"""The neural model as pure numpy functions: probabilities from W (one row per
context: a previous symbol, or k of them), negative log-likelihood of counted
examples, and seeded sampling. Portable: exp and
log come from bigram.portable, so results are the same bytes on every CPU."""

from collections.abc import Callable

import numpy as np

from bigram import portable
from bigram.artifacts import SPLITS
from bigram.context import advance


def distributions(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise log-softmax and softmax of W in float64: log P(next | context)
    and P(next | context)."""
    z = np.asarray(W, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)  # a new array: W itself is never changed
    e = portable.exp(z)
    total = e.sum(axis=1, keepdims=True)
    return z - portable.log(total), e / total


def log_softmax(W: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of W in float64: log P(next | context)."""
    return distributions(W)[0]


def nll(counts: np.ndarray, logp: np.ndarray) -> float:
    """Mean negative log-likelihood of the examples counted in `counts`."""
    return float(-(counts * logp).sum() / counts.sum())


def split_nlls(counts: np.ndarray, logp: np.ndarray) -> dict[str, float]:
    """Mean NLL on each split of the (3, rows, V) split counts, and on all examples."""
    out = {name: nll(c, logp) for name, c in zip(SPLITS, counts)}
    out["all"] = nll(counts.sum(axis=0), logp)
    return out


def sample(
    P: np.ndarray,
    count: int,
    seed: int,
    max_length: int,
    progress: Callable[[int], None] | None = None,
) -> list[list[int]]:
    """`count` index sequences drawn from the model P(next | context) of shape
    (V^k, V), each from k boundaries '.' until '.' (or max_length symbols); numpy's
    PCG64 under `seed` (integer arithmetic, the same on every machine), so reruns agree.
    progress(done) is called every 2% of the names, and at the end."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(P, axis=1)
    n_rows, V = P.shape
    out = []
    tick = max(1, count // 50)
    for i in range(count):
        if progress is not None and i % tick == 0:
            progress(i)
        context, seq = 0, []
        while len(seq) < max_length:
            row = cdf[context]
            ix = min(int(np.searchsorted(row, rng.random() * row[-1], side="right")), V - 1)
            if ix == 0:
                break
            seq.append(ix)
            context = advance(context, ix, n_rows, V)
        out.append(seq)
    if progress is not None:
        progress(count)
    return out
