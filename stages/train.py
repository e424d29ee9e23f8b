"""Stage 3, train: the weight matrix W (V×V, or V^k×V for model.context k) by
gradient descent on the train split."""

from collections.abc import Callable, Mapping
from dataclasses import asdict, replace

import numpy as np

from bigram import artifacts, checkpoint, environment, fsio, lineage, params
from bigram.artifacts import checkpoint_path, md5_bytes, sha256_bytes
from bigram.console import progress
from bigram.context import check_size
from bigram.params import TrainParams
from bigram.stage import run_stage
from bigram.training import check_budget, fit


def derive(
    vocab: list[str],
    counts: np.ndarray,
    read: dict[str, bytes],
    chain: list[lineage.Link],
    train: TrainParams,
    code: dict[str, str],
    versions: Mapping[str, str | None],
    save: Callable[[str, bytes], None],
    until: int | None = None,
    show_progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Train W on `counts` (the train split, V^k×V) and hand each checkpoint's path and
    bytes to `save` as soon as it exists; stop after step `until` (a checkpoint step,
    train.steps by default) with the checkpoints a full run writes up to there.
    Returns W and the [loss, ce, reg] curve."""
    rows, V = counts.shape
    check_budget((rows, V), train)
    chain = chain + [lineage.record("train", {"train": asdict(train)}, read, {}, code)]
    previous: checkpoint.Previous | None = None

    def on_checkpoint(step: int, W_step: np.ndarray, terms: tuple[float, float, float]) -> None:
        nonlocal previous
        meta = checkpoint.build_meta(vocab, chain, versions, step, terms, previous)
        data = checkpoint.to_bytes(W_step, meta)
        path = checkpoint_path(step)
        save(path, data)
        previous = {"path": path, "md5": md5_bytes(data), "sha256": sha256_bytes(data)}

    run = train if until is None else replace(train, steps=until)
    return fit(counts, run, show_progress=show_progress, on_checkpoint=on_checkpoint)


def main() -> None:
    train = params.load().train
    read = {artifacts.VOCAB: artifacts.read_bytes(artifacts.VOCAB, artifacts.JSON_LIMIT)}
    vocab = artifacts.parse_vocab(read[artifacts.VOCAB])
    read[artifacts.COUNTS] = artifacts.read_bytes(artifacts.COUNTS)
    chain = lineage.read_recorded(artifacts.SPLIT_LINEAGE, ("prepare", "split"), read)
    # W's shape follows the context the counts were made with, as split recorded it.
    V = len(vocab)
    rows = check_size(V, lineage.context_of(chain), artifacts.SPLIT_LINEAGE)
    check_budget((rows, V), train)
    counts = artifacts.load_npy(read[artifacts.COUNTS], artifacts.COUNTS)
    # The train split alone: holding all three would cost memory training never uses.
    counts = artifacts.check_counts(counts, V, rows)[0].copy()
    written: list[str] = []

    def save(path: str, data: bytes) -> None:
        # Every checkpoint carries its whole lineage and the digest of the one
        # before it, so a copy found anywhere can still be audited (`bigram lineage`).
        artifacts.write_bytes(path, data)
        if path == artifacts.checkpoint_path(train.steps):
            artifacts.write_bytes(artifacts.MODEL, data)
        written.append(path)

    # All outputs take their names together at the end, or none does.
    with fsio.stage_outputs():
        code = lineage.stage_code("train")
        W, curve = derive(
            vocab,
            counts,
            read,
            chain,
            train,
            code,
            environment.declared("train"),
            save,
            show_progress=True,
        )
        for stale in set(artifacts.checkpoint_paths()) - set(written):  # a longer earlier run's
            fsio.remove(stale)
        lines = "".join(f"{k},{a:.7g},{b:.7g},{c:.7g}\n" for k, (a, b, c) in enumerate(curve))
        artifacts.write_text(artifacts.LOSS_CURVE, "step,loss,ce,reg\n" + lines)
        loss, ce, reg = curve[-1].tolist()
        artifacts.write_json(artifacts.metrics_path("train"), {"loss": loss, "ce": ce, "reg": reg})
    progress(
        "train",
        f"{train.steps} steps at lr {train.lr}: loss {curve[0, 0]:.4f} -> "
        f"{loss:.4f}; {len(written)} checkpoints",
    )


if __name__ == "__main__":
    run_stage("train", main, __doc__)
