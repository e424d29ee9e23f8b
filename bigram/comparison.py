"""The neural model against the count-based matrix P (the notebook's section 7; for
model.context k > 1 the count-based k-gram): metrics, and the table DVC draws as
heatmaps."""

import csv
import io
from typing import Any

import numpy as np

from bigram import portable
from bigram.context import label
from bigram.model import distributions, split_nlls


def count_probs(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Add-`smoothing` probabilities P(next | context), row-normalised."""
    smoothed = counts + smoothing
    P: np.ndarray = smoothed / smoothed.sum(axis=1, keepdims=True)
    return P


def mean_kl(P: np.ndarray, logQ: np.ndarray) -> float:
    """Mean over rows of KL(P_row ‖ Q_row)."""
    return float((P * (portable.log(P) - logQ)).sum(axis=1).mean())


def compare(
    counts: np.ndarray, W: np.ndarray, smoothing: float, fit: str
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    """Metrics and (P_count, P_neural, fit counts) for the split counts and W.
    P_count is fitted on the train split, or on all pairs with fit='all' (the
    notebook's section 7, which leaks dev and test into the count model)."""
    fitted = counts[0] if fit == "train" else counts.sum(axis=0)
    p_count = count_probs(fitted, smoothing)
    logp_neural, p_neural = distributions(W)
    metrics = {
        "count": split_nlls(counts, portable.log(p_count)),
        "neural": split_nlls(counts, logp_neural),
        "kl_count_neural": mean_kl(p_count, logp_neural),
        "max_abs_diff": float(np.abs(p_count - p_neural).max()),
    }
    return metrics, p_count, p_neural, fitted


# The heatmaps (.dvc/plots/bigram_heatmaps.json) stay readable up to about 60 rows and
# columns; beyond that the table would be V^k·V rows no person reads.
TABLE_SYMBOLS = 60
# Contexts of k > 1 symbols are labelled with k characters: 30 rows keep every label
# legible in the heatmaps' 360 pixels.
TABLE_CONTEXTS = 30


def _most_frequent(frequency: np.ndarray, limit: int) -> list[int]:
    """'.' and the `limit`-1 most frequent other indices, in index order."""
    if len(frequency) <= limit:
        return list(range(len(frequency)))
    # Stable sort: ties keep index order, so the choice is the same on every machine.
    top = np.argsort(-frequency[1:], kind="stable")[: limit - 1] + 1
    return [0, *sorted(int(i) for i in top)]


def table_symbols(fitted: np.ndarray, limit: int = TABLE_SYMBOLS) -> list[int]:
    """Indices of the symbols the bigram table shows: all of them up to `limit`, else '.'
    and the most frequent others (by pairs they start or end), in vocabulary order."""
    return _most_frequent(fitted.sum(axis=0) + fitted.sum(axis=1), limit)


def table_layout(
    fitted: np.ndarray, k: int, contexts: int = TABLE_CONTEXTS
) -> tuple[list[int], list[int]]:
    """(rows, columns) of the fit counts the table shows. The bigram's are the same
    symbols both ways (table_symbols). For k > 1 the rows are the contexts seen in the
    fit, most frequent first (the heatmaps draw them in this order), at most `contexts`;
    the columns are the next symbols, all of them up to TABLE_SYMBOLS."""
    if k == 1:
        symbols = table_symbols(fitted)
        return symbols, symbols
    totals = fitted.sum(axis=1)
    seen = np.flatnonzero(totals)
    rows = seen[np.argsort(-totals[seen], kind="stable")][:contexts]
    return [int(r) for r in rows], _most_frequent(fitted.sum(axis=0), TABLE_SYMBOLS)


def bigram_table(
    vocab: list[str],
    fitted: np.ndarray,
    p_count: np.ndarray,
    p_neural: np.ndarray,
    layout: tuple[list[int], list[int]] | None = None,
    k: int = 1,
) -> str:
    """CSV of prev,next,count,p_count,p_neural for the (rows, columns) of `layout`
    (default: every symbol both ways); prev is the context's k symbols, oldest first.
    The format is pandas' to_csv(index=False, float_format="%.8g") (a test checks),
    without paying for importing pandas on every experiment."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["prev", "next", "count", "p_count", "p_neural"])
    rows, columns = layout or (range(len(vocab)), range(len(vocab)))
    writer.writerows(
        [
            label(i, k, vocab),
            vocab[j],
            fitted[i, j],
            f"{p_count[i, j]:.8g}",
            f"{p_neural[i, j]:.8g}",
        ]
        for i in rows
        for j in columns
    )
    return out.getvalue()
