"""Stage 5, compare: the neural model against the count-based bigram matrix P.

Reads   params.yaml (compare), data/prepared/vocab.json, data/split/counts.npy,
        models/model.safetensors
Writes  plots/bigrams.csv (drawn by DVC as heatmaps), metrics/compare.json
"""

from bigram import artifacts, fsio, params
from bigram.comparison import TABLE_SYMBOLS, bigram_table, compare, table_symbols
from bigram.console import progress, run_stage


def main() -> None:
    settings = params.load().compare
    vocab = artifacts.read_vocab()
    counts = artifacts.read_counts(len(vocab))
    W = artifacts.read_checkpoint(vocab=vocab)[0]
    metrics, p_count, p_neural, fitted = compare(counts, W, settings.smoothing, settings.fit)
    symbols = table_symbols(fitted)
    with fsio.stage_outputs():
        table = bigram_table(vocab, fitted, p_count, p_neural, symbols)
        artifacts.write_text(artifacts.BIGRAMS, table)
        artifacts.write_json(artifacts.metrics_path("compare"), metrics)
    if len(symbols) < len(vocab):
        progress(
            "compare",
            f"{artifacts.BIGRAMS} shows the {TABLE_SYMBOLS} most frequent of "
            f"{len(vocab)} symbols ('.' included); the metrics use all of them",
        )
    progress(
        "compare",
        f"count (fit on {settings.fit}) vs neural NLL on all pairs: "
        f"{metrics['count']['all']:.4f} vs {metrics['neural']['all']:.4f}",
    )


if __name__ == "__main__":
    run_stage("compare", main, __doc__)
