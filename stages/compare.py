"""Stage 5: the neural model against the count-based bigram matrix P."""
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
    if len(vocab) <= 60:  # beyond that, labels overlap into a grey smear
        ticks = range(len(vocab))
        ax.set_xticks(ticks, labels=vocab)
        ax.set_yticks(ticks, labels=vocab)
    ax.set_xlabel("next")
    ax.set_ylabel("previous")
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def main():
    import pandas as pd
    p = params.load()["compare"]
    vocab = artifacts.read_vocab()
    counts = artifacts.read_counts(len(vocab))
    metrics, p_count, p_neural, fitted = compare(counts, artifacts.load_model(vocab)[0],
                                                 p["smoothing"], p["fit"])
    V = len(vocab)
    table = pd.DataFrame({"prev": np.repeat(vocab, V), "next": np.tile(vocab, V),
                          "count": fitted.ravel(), "p_count": p_count.ravel(),
                          "p_neural": p_neural.ravel()})
    with artifacts.atomic(artifacts.BIGRAMS) as f:
        table.to_csv(f, index=False, float_format="%.8g", lineterminator="\n")
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
