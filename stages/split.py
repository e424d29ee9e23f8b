"""Stage 2, split: a seeded train/dev/test split of the pairs (or of whole names),
and the counts of (context of model.context symbols, next symbol) in each split.

Reads   params.yaml (split, model), data/prepared/vocab.json, data/prepared/pairs.npy,
        data/prepared/lineage.json
Writes  data/split/split.npy, data/split/counts.npy, data/split/lineage.json,
        metrics/split.json
"""

from dataclasses import asdict

from bigram import artifacts, fsio, lineage, params
from bigram.artifacts import SPLITS
from bigram.console import progress, run_stage
from bigram.context import check_size
from bigram.splitting import check_sizes, split_counts, split_pairs, units


def main() -> None:
    settings = params.load()
    split, model = settings.split, settings.model
    vocab = artifacts.read_vocab()
    check_size(len(vocab), model.context)
    pairs = artifacts.read_pairs(len(vocab))
    chain = lineage.check_recorded(
        artifacts.read_json(artifacts.PREPARE_LINEAGE),
        ("prepare",),
        [artifacts.VOCAB, artifacts.PAIRS],
        artifacts.PREPARE_LINEAGE,
    )
    check_sizes(units(pairs, split.unit), split.train, split.dev, split.unit)
    assign = split_pairs(pairs, split.seed, split.train, split.dev, split.unit)
    counts = split_counts(pairs, assign, len(vocab), model.context)
    sizes = {name: int(counts[i].sum()) for i, name in enumerate(SPLITS)}
    with fsio.stage_outputs():
        artifacts.write_npy(artifacts.SPLIT, assign)
        artifacts.write_npy(artifacts.COUNTS, counts)
        artifacts.write_json(
            artifacts.SPLIT_LINEAGE,
            chain
            + [
                lineage.record(
                    "split",
                    {"split": asdict(split), "model": asdict(model)},
                    [artifacts.VOCAB, artifacts.PAIRS],
                    [artifacts.SPLIT, artifacts.COUNTS],
                )
            ],
        )
        artifacts.write_json(artifacts.metrics_path("split"), sizes)
    progress(
        "split", f"by {split.unit}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + " pairs"
    )


if __name__ == "__main__":
    run_stage("split", main, __doc__)
