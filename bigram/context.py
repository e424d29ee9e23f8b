"""Contexts of k previous symbols: the k-gram generalisation of the bigram's one
previous symbol (model.context = k; k = 1 is the bigram).

A context is the k symbols before the next one, oldest first, read as a base-V
number: W's row x₁·V + x₂ for k = 2, the notebook's one-hot over V^k contexts. A
name is padded with k boundary symbols at the start, as makemore does, so its first
symbol follows the context '.'·k (row 0) and a name still gives len + 1 examples:
the bigram pairs, each with a longer history. Nothing here changes the split.
"""

import math

import numpy as np

from bigram.console import PipelineError

# W's entries at most: 4096², the bigram's largest vocabulary, which keeps every stage
# under its 2 GiB budget (a float64 copy of W is 128 MiB; the split counts 384 MiB).
MAX_WEIGHTS = 4096**2


def rows(V: int, k: int) -> int:
    """V^k, the number of contexts and of W's rows."""
    n: int = V**k
    return n


def weights_needed(V: int, k: int) -> int | None:
    """V^k·V, the entries of W, or None when that exceeds MAX_WEIGHTS. Multiplied
    step by step, so a forged or mistyped k never builds a huge integer."""
    size = V
    for _ in range(k):
        size *= V
        if size > MAX_WEIGHTS:
            return None
    return size


def check_size(V: int, k: int, source: str = "params.yaml") -> int:
    """V^k, after refusing up front a W of more than MAX_WEIGHTS entries: its
    memory (and each training step's time) grows as V^k·V."""
    if weights_needed(V, k) is None:
        largest = 0
        while largest + 1 < k and weights_needed(V, largest + 1) is not None:
            largest += 1
        fix = f"use model.context <= {largest}" if largest else "no context fits: use fewer symbols"
        # V^(k+1) as a float overflows past ~1e308: a mistyped k gets the exponent instead
        needed = f"{float(V) ** (k + 1):.3g}" if (k + 1) * math.log10(V) < 300 else f"{V}^{k + 1}"
        raise PipelineError(
            f"{source}: model.context = {k} with a vocabulary of {V} symbols needs a "
            f"{V}^{k}×{V} W ({needed} weights, 8 bytes each as float64); "
            f"the limit is {MAX_WEIGHTS:,} weights: {fix}"
        )
    return rows(V, k)


def context_rows(xs: np.ndarray, k: int, V: int) -> np.ndarray:
    """The context row (int64) of each example, from xs, the previous symbols of the
    bigram pairs in file order. The j-th older symbol of example i is xs[i-j] unless
    the name started in between (a name starts where xs is '.', index 0); then it is
    padding '.', which adds nothing to the row. Examples fewer than k-1 into the array
    get only the history it holds: pass k-1 earlier pairs along and drop their rows."""
    out = xs.astype(np.int64)
    n = len(out)
    within = np.ones(n, dtype=bool)  # the j symbols back are still inside the name
    scale = 1
    for j in range(1, k):
        scale *= V
        within[j - 1 :] &= xs[: n - j + 1] != 0
        within[: min(j, n)] = False
        older = np.zeros(n, dtype=np.int64)
        older[j:] = xs[: n - j]
        out += np.where(within, older, 0) * scale
    return out


def label(row: int, k: int, vocab: list[str]) -> str:
    """The k symbols of a context row, oldest first ('..' is a name's start for k = 2)."""
    V = len(vocab)
    symbols = []
    for _ in range(k):
        row, digit = divmod(row, V)
        symbols.append(vocab[digit])
    return "".join(reversed(symbols))


def advance(row: int, symbol: int, n_rows: int, V: int) -> int:
    """The context after `symbol` follows context `row`: drop the oldest, append it."""
    return (row * V + symbol) % n_rows
