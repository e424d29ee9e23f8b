"""Stage 5, compare: the neural model against the count-based bigram matrix P.

Reads   params.yaml (compare), data/prepared/vocab.json, data/split/counts.npy,
        models/model.safetensors
Writes  plots/bigrams.csv, plots/heatmaps/{p_count,p_neural,p_diff}.png, metrics/compare.json
"""

from bigram import artifacts, params
from bigram.comparison import bigram_table, compare, heatmap
from bigram.console import progress, run_stage


def main() -> None:
    settings = params.load().compare
    vocab = artifacts.read_vocab()
    counts = artifacts.read_counts(len(vocab))
    metrics, p_count, p_neural, fitted = compare(
        counts, artifacts.read_checkpoint(vocab=vocab)[0], settings.smoothing, settings.fit
    )
    artifacts.write_text(artifacts.BIGRAMS, bigram_table(vocab, fitted, p_count, p_neural))
    fitted_on = "train split" if settings.fit == "train" else "all pairs"
    for path, matrix, title, diverging in (
        (
            artifacts.HEATMAP_COUNT,
            p_count,
            f"count-based P (add-{settings.smoothing:g}, {fitted_on})",
            False,
        ),
        (artifacts.HEATMAP_NEURAL, p_neural, "neural P = softmax(W)", False),
        (artifacts.HEATMAP_DIFF, p_count - p_neural, "P_count - P_neural", True),
    ):
        artifacts.write_bytes(path, heatmap(matrix, vocab, title, diverging))
    artifacts.write_json(artifacts.metrics_path("compare"), metrics)
    progress(
        "compare",
        f"count (fit on {settings.fit}) vs neural NLL on all pairs: "
        f"{metrics['count']['all']:.4f} vs {metrics['neural']['all']:.4f}",
    )


if __name__ == "__main__":
    run_stage("compare", main, __doc__)
