"""The seeded train/dev/test split and the k-gram counts of each split.

Everything downstream of the split works on (3, V^k, V) count matrices (k =
model.context; V×V for the bigram) rather than on the N examples: the
cross-entropy over N examples is a count-weighted sum over that matrix, so
training, evaluating and comparing cost O(V^k·V) per pass whatever N is. The
split itself permutes the bigram pairs (or names), whatever k: a k-gram example
is a pair with a longer history, so every k splits the same.
"""

import numpy as np

from bigram.console import PipelineError
from bigram.context import context_rows
from bigram.portable import RANDPERM_LIMIT, randperm

# The splits, in the order of split ids and of counts.npy's first axis.
SPLITS = ("train", "dev", "test")


def permutation(n: int, seed: int) -> np.ndarray:
    """torch.randperm(n) under `seed`, the notebook's split, replayed without torch
    (bigram.portable.randperm): the same on every machine, torch installed or not."""
    return randperm(n, seed)


def name_of_pair(xs: np.ndarray) -> np.ndarray:
    """Index of the name each pair belongs to: a name's first pair starts at '.'."""
    return np.cumsum(xs == 0) - 1


def split_sizes(n: int, train: float, dev: float) -> tuple[int, int, int]:
    """Units in train, dev and test: int(train·n), int(dev·n) and the rest, as the notebook."""
    n_train, n_dev = int(train * n), int(dev * n)
    return n_train, n_dev, n - n_train - n_dev


def check_sizes(n: int, train: float, dev: float, unit: str) -> None:
    """Refuse fractions that leave a split without a single unit, and more units than
    the replayed torch.randperm covers."""
    if n >= RANDPERM_LIMIT:
        raise PipelineError(
            f"params.yaml: split.unit = {unit} gives {n:,} units to permute; the split replays "
            f"torch.randperm, whose algorithm changes at {RANDPERM_LIMIT:,}: use split.unit: "
            "names, or a smaller names file"
        )
    sizes = dict(zip(SPLITS, split_sizes(n, train, dev)))
    empty = [name for name, size in sizes.items() if size < 1]
    if empty:
        raise PipelineError(
            f"params.yaml: split.train = {train}, split.dev = {dev} leave the "
            f"{' and '.join(empty)} split empty for {n} {unit}; use other fractions "
            "or a larger names file"
        )


def assign_split(perm: np.ndarray, train: float, dev: float) -> np.ndarray:
    """Split id (0 train, 1 dev, 2 test) of each of len(perm) units: the first
    n_train of the permutation train, the next n_dev dev, the rest test."""
    n_train, n_dev, _ = split_sizes(len(perm), train, dev)
    assign = np.full(len(perm), 2, dtype=np.uint8)
    assign[perm[:n_train]] = 0
    assign[perm[n_train : n_train + n_dev]] = 1
    return assign


def units(pairs: np.ndarray, unit: str) -> int:
    """How many units the split permutes: pairs, or names."""
    return pairs.shape[1] if unit == "pairs" else int((pairs[0] == 0).sum())


def split_pairs(pairs: np.ndarray, seed: int, train: float, dev: float, unit: str) -> np.ndarray:
    """Split id (0 train, 1 dev, 2 test) of every pair, permuting pairs or whole names."""
    if unit == "pairs":
        return assign_split(permutation(pairs.shape[1], seed), train, dev)
    owner = name_of_pair(pairs[0])
    ids: np.ndarray = assign_split(permutation(int(owner[-1]) + 1, seed), train, dev)[owner]
    return ids


def split_counts(
    pairs: np.ndarray, assign: np.ndarray, V: int, k: int = 1, chunk: int = 1 << 22
) -> np.ndarray:
    """(3, V^k, V) counts of (context, next) in the train, dev and test examples: row
    = the k symbols before `next`, as a base-V number (bigram.context)."""
    # In chunks: int64 copies of all N pairs would be the stage's peak memory. Each
    # chunk brings the k-1 pairs before it along, for the history of its first examples.
    rows = V**k
    counts = np.zeros(3 * rows * V, dtype=np.int64)
    for i in range(0, pairs.shape[1], chunk):
        start = max(0, i - (k - 1))
        xs = context_rows(pairs[0, start : i + chunk], k, V)[i - start :]
        ys = pairs[1, i : i + chunk].astype(np.int64)
        flat = assign[i : i + chunk].astype(np.int64) * (rows * V) + xs * V + ys
        counts += np.bincount(flat, minlength=3 * rows * V)
    return counts.reshape(3, rows, V)
