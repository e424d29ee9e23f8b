"""The neural model as pure numpy functions: probabilities from W (one row per
context: a previous symbol, or k of them) and the negative log-likelihood of counted
examples. Portable: exp and log come from bigram.portable, so results are the same
bytes on every CPU. Drawing names from the model is bigram.sampling."""

import numpy as np

from bigram import portable
from bigram.splitting import SPLITS


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
