"""Stage 5: the neural model against the count-based bigram matrix P."""
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
    artifacts.write_json(artifacts.metrics_path("compare"), metrics)
    progress("compare", f"count (fit on {p['fit']}) vs neural NLL on all pairs: "
             f"{metrics['count']['all']:.4f} vs {metrics['neural']['all']:.4f}")


if __name__ == "__main__":
    run(main)
