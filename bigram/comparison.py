"""The neural model against the count-based bigram matrix P (the notebook's
section 7): metrics, the bigram table and heatmaps."""

import csv
import io

import numpy as np

from bigram import portable
from bigram.model import distributions, split_nlls


def count_probs(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Add-`smoothing` bigram probabilities, row-normalised."""
    smoothed = counts + smoothing
    return smoothed / smoothed.sum(axis=1, keepdims=True)


def mean_kl(P: np.ndarray, logQ: np.ndarray) -> float:
    """Mean over rows of KL(P_row ‖ Q_row)."""
    return float((P * (portable.log(P) - logQ)).sum(axis=1).mean())


def compare(
    counts: np.ndarray, W: np.ndarray, smoothing: float, fit: str
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
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


def heatmap(matrix: np.ndarray, vocab: list[str], title: str, diverging: bool = False) -> bytes:
    """PNG bytes of a V×V matrix with rows (previous symbol) and columns (next
    symbol) labelled by character."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, cheaper import

    fig = Figure(figsize=(8, 7), dpi=100)
    ax = fig.add_subplot()
    limit = float(np.abs(matrix).max()) or 1.0
    image = ax.imshow(
        matrix,
        cmap="RdBu_r" if diverging else "viridis",
        vmin=-limit if diverging else 0,
        vmax=limit,
    )
    # Symbols as plain text, not tick labels: matplotlib builds a costly Tick object
    # per label, and compare runs on every `dvc exp run`. Beyond ~60 symbols labels
    # overlap into a grey smear, so they are left out.
    ax.set_xticks([])
    ax.set_yticks([])
    V = len(vocab)
    if V <= 60:
        for i, symbol in enumerate(vocab):
            ax.text(i, V - 0.3, symbol, ha="center", va="top")
            ax.text(-0.9, i, symbol, ha="right", va="center")
    ax.set_xlabel("next", labelpad=18)
    ax.set_ylabel("previous", labelpad=20)
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def bigram_table(
    vocab: list[str], fitted: np.ndarray, p_count: np.ndarray, p_neural: np.ndarray
) -> str:
    """CSV of prev,next,count,p_count,p_neural for every pair of symbols, in the
    format of pandas' to_csv(index=False, float_format="%.8g") (a test checks),
    without paying for importing pandas on every experiment."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["prev", "next", "count", "p_count", "p_neural"])
    V = len(vocab)
    writer.writerows(
        [vocab[i], vocab[j], fitted[i, j], f"{p_count[i, j]:.8g}", f"{p_neural[i, j]:.8g}"]
        for i in range(V)
        for j in range(V)
    )
    return out.getvalue()
