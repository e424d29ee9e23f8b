"""Stage 5: the neural model against the count-based bigram matrix P."""
import csv
import io

import numpy as np

from stages import artifacts, params
from stages.cli import progress, run
from stages.core import count_probs, log_softmax, mean_kl, split_nlls


def compare(counts, W, smoothing, fit):
    """Metrics and (P_count, P_neural, fit counts) for the split counts and W.
    P_count is fitted on the train split, or on all pairs with fit='all' (the
    notebook's section 7, which leaks dev and test into the count model)."""
    fitted = counts[0] if fit == "train" else counts.sum(axis=0)
    p_count = count_probs(fitted, smoothing)
    logp_neural = log_softmax(W)
    p_neural = np.exp(logp_neural)
    metrics = {"count": split_nlls(counts, np.log(p_count)),
               "neural": split_nlls(counts, logp_neural),
               "kl_count_neural": mean_kl(p_count, logp_neural),
               "max_abs_diff": float(np.abs(p_count - p_neural).max())}
    return metrics, p_count, p_neural, fitted


def heatmap(matrix, vocab, title, diverging=False):
    """PNG bytes of a V×V matrix with rows (previous symbol) and columns (next
    symbol) labelled by character."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, cheaper import
    fig = Figure(figsize=(8, 7), dpi=100)
    ax = fig.add_subplot()
    limit = float(np.abs(matrix).max()) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r" if diverging else "viridis",
                      vmin=-limit if diverging else 0, vmax=limit)
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


def bigram_table(vocab, fitted, p_count, p_neural):
    """CSV of prev,next,count,p_count,p_neural for every pair of symbols, in the
    format of pandas' to_csv(index=False, float_format="%.8g") (a test checks),
    without paying for importing pandas on every experiment."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["prev", "next", "count", "p_count", "p_neural"])
    V = len(vocab)
    writer.writerows([vocab[i], vocab[j], fitted[i, j], f"{p_count[i, j]:.8g}",
                      f"{p_neural[i, j]:.8g}"] for i in range(V) for j in range(V))
    return out.getvalue()


def main():
    p = params.load()["compare"]
    vocab = artifacts.read_vocab()
    counts = artifacts.read_counts(len(vocab))
    metrics, p_count, p_neural, fitted = compare(counts, artifacts.load_model(vocab)[0],
                                                 p["smoothing"], p["fit"])
    artifacts.write_text(artifacts.BIGRAMS, bigram_table(vocab, fitted, p_count, p_neural))
    fitted_on = "train split" if p["fit"] == "train" else "all pairs"
    for path, matrix, title, diverging in (
            (artifacts.HEATMAP_COUNT, p_count, f"count-based P (add-{p['smoothing']:g}, {fitted_on})", False),
            (artifacts.HEATMAP_NEURAL, p_neural, "neural P = softmax(W)", False),
            (artifacts.HEATMAP_DIFF, p_count - p_neural, "P_count - P_neural", True)):
        artifacts.write_bytes(path, heatmap(matrix, vocab, title, diverging))
    artifacts.write_json(artifacts.metrics_path("compare"), metrics)
    progress("compare", f"count (fit on {p['fit']}) vs neural NLL on all pairs: "
             f"{metrics['count']['all']:.4f} vs {metrics['neural']['all']:.4f}")


if __name__ == "__main__":
    run(main)
