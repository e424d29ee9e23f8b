"""Stage 2, split: a seeded train/dev/test split of the pairs (or of whole names),
and the counts of (context of model.context symbols, next symbol) in each split."""

from dataclasses import asdict, dataclass

import numpy as np

from bigram import artifacts, fsio, lineage, params
from bigram.artifacts import COUNTS, SPLIT, SPLIT_LINEAGE, json_bytes, npy_bytes
from bigram.console import progress
from bigram.context import check_size
from bigram.params import ModelParams, SplitParams
from bigram.splitting import SPLITS, check_sizes, split_counts, split_pairs, units
from bigram.stage import run_stage


@dataclass(frozen=True)
class Split:
    sizes: dict[str, int]
    counts: np.ndarray  # (3, V^k, V)
    chain: list[lineage.Link]
    files: dict[str, bytes]  # split.npy, counts.npy, lineage.json


def derive(
    vocab: list[str],
    pairs: np.ndarray,
    read: dict[str, bytes],
    chain: list[lineage.Link],
    split: SplitParams,
    model: ModelParams,
    code: dict[str, str],
) -> Split:
    """The seeded split of the pairs (`read`: the bytes of vocab.json and pairs.npy they
    came from) and the k-gram counts of each split."""
    check_size(len(vocab), model.context)
    check_sizes(units(pairs, split.unit), split.train, split.dev, split.unit)
    assign = split_pairs(pairs, split.seed, split.train, split.dev, split.unit)
    counts = split_counts(pairs, assign, len(vocab), model.context)
    sizes = {name: int(counts[i].sum()) for i, name in enumerate(SPLITS)}
    files = {SPLIT: npy_bytes(assign), COUNTS: npy_bytes(counts)}
    recorded = {"split": asdict(split), "model": asdict(model)}
    chain = chain + [lineage.record("split", recorded, read, files, code)]
    files[SPLIT_LINEAGE] = json_bytes(chain)
    return Split(sizes, counts, chain, files)


def main() -> None:
    settings = params.load()
    split, model = settings.split, settings.model
    read = {artifacts.VOCAB: artifacts.read_bytes(artifacts.VOCAB, artifacts.JSON_LIMIT)}
    vocab = artifacts.parse_vocab(read[artifacts.VOCAB])
    check_size(len(vocab), model.context)  # before reading the pairs: refused at once
    read[artifacts.PAIRS] = artifacts.read_bytes(artifacts.PAIRS)
    pairs = artifacts.check_pairs(
        artifacts.load_npy(read[artifacts.PAIRS], artifacts.PAIRS), len(vocab)
    )
    chain = lineage.read_recorded(artifacts.PREPARE_LINEAGE, ("prepare",), read)
    out = derive(vocab, pairs, read, chain, split, model, lineage.stage_code("split"))
    with fsio.stage_outputs():
        for path, content in out.files.items():
            artifacts.write_bytes(path, content)
        # Under their own name: `train`, `dev` and `test` at the top level would be the
        # columns of evaluate.json's NLLs too in `dvc exp show` and pandas.
        artifacts.write_json(artifacts.metrics_path("split"), {"pairs_per_split": out.sizes})
    sizes = ", ".join(f"{k} {v}" for k, v in out.sizes.items())
    progress("split", f"by {split.unit}: {sizes} pairs")


if __name__ == "__main__":
    run_stage("split", main, __doc__)
