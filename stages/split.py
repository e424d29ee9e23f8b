"""Stage 2: seeded train/dev/test split of the pairs (or of whole names)."""
from stages import artifacts, lineage, params
from stages.cli import PipelineError, progress, run
from stages.core import SPLITS, assign_split, name_of_pair, split_counts, split_sizes


def permutation(n, seed):
    # torch's generator, not numpy's: the notebook's split is torch.randperm
    # under torch.manual_seed, and the pipeline must reproduce its numbers.
    import torch
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()


def split_pairs(pairs, seed, train, dev, unit):
    """Split id (0 train, 1 dev, 2 test) of every pair."""
    if unit == "pairs":
        return assign_split(permutation(pairs.shape[1], seed), train, dev)
    owner = name_of_pair(pairs[0])
    return assign_split(permutation(int(owner[-1]) + 1, seed), train, dev)[owner]


def check_sizes(n, train, dev, unit):
    """Refuse fractions that leave a split without a single unit."""
    sizes = dict(zip(SPLITS, split_sizes(n, train, dev)))
    empty = [name for name, size in sizes.items() if size < 1]
    if empty:
        raise PipelineError(f"params.yaml: split.train = {train}, split.dev = {dev} leave the "
                            f"{' and '.join(empty)} split empty for {n} {unit}; use other fractions "
                            "or a larger names file")


def main():
    p = params.load()["split"]
    vocab = artifacts.read_vocab()
    pairs = artifacts.read_pairs(len(vocab))
    chain = artifacts.read_json(artifacts.PREPARE_LINEAGE)
    lineage.check_recorded(chain, [artifacts.VOCAB, artifacts.PAIRS], artifacts.PREPARE_LINEAGE)
    units = pairs.shape[1] if p["unit"] == "pairs" else int((pairs[0] == 0).sum())
    check_sizes(units, p["train"], p["dev"], p["unit"])
    assign = split_pairs(pairs, p["seed"], p["train"], p["dev"], p["unit"])
    counts = split_counts(pairs, assign, len(vocab))
    sizes = {name: int(counts[i].sum()) for i, name in enumerate(SPLITS)}
    artifacts.write_npy(artifacts.SPLIT, assign)
    artifacts.write_npy(artifacts.COUNTS, counts)
    artifacts.write_json(artifacts.SPLIT_LINEAGE, chain + [lineage.record(
        "split", {"split": p}, [artifacts.VOCAB, artifacts.PAIRS],
        [artifacts.SPLIT, artifacts.COUNTS])])
    artifacts.write_json(artifacts.metrics_path("split"), sizes)
    progress("split", f"by {p['unit']}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + " pairs")


if __name__ == "__main__":
    run(main)
