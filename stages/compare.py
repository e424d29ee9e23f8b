"""Stage 5, compare: the neural model against the count-based matrix P (the bigram's,
or the k-gram's for model.context k), smoothed with compare.smoothing."""

from bigram import artifacts, checkpoint, fsio, lineage, params
from bigram.comparison import TABLE_SYMBOLS, bigram_table, compare, table_layout
from bigram.console import progress
from bigram.stage import run_stage


def main() -> None:
    settings = params.load().compare
    vocab = artifacts.read_vocab()
    W, meta = checkpoint.read(vocab=vocab)
    k = lineage.context_of(meta["lineage"])
    counts = artifacts.read_counts(len(vocab), W.shape[0])
    metrics, p_count, p_neural, fitted = compare(counts, W, settings.smoothing, settings.fit)
    layout = table_layout(fitted, k)
    with fsio.stage_outputs():
        table = bigram_table(vocab, fitted, p_count, p_neural, layout, k)
        artifacts.write_text(artifacts.BIGRAMS, table)
        artifacts.write_json(artifacts.metrics_path("compare"), metrics)
    rows, columns = layout
    seen = int((fitted.sum(axis=1) > 0).sum())
    if k > 1 and len(rows) < seen:
        progress(
            "compare",
            f"{artifacts.BIGRAMS} shows the {len(rows)} most frequent of the {seen} "
            f"contexts seen in {settings.fit}; the metrics use all of them",
        )
    if len(columns) < len(vocab):
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
