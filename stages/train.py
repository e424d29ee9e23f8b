"""Stage 3, train: the weight matrix W (V×V, or V^k×V for model.context k) by
gradient descent on the train split.

Reads   params.yaml (train), data/prepared/vocab.json, data/split/counts.npy,
        data/split/lineage.json
Writes  models/model.safetensors (the final W), models/checkpoints/step_NNNNNN.safetensors,
        plots/train_loss.csv, metrics/train.json
"""

from dataclasses import asdict

import numpy as np

from bigram import artifacts, fsio, lineage, params
from bigram.console import progress, run_stage
from bigram.context import check_size
from bigram.training import check_budget, fit


def main() -> None:
    train = params.load().train
    vocab = artifacts.read_vocab()
    counts = artifacts.read_npy(artifacts.COUNTS)  # its header checked; its shape below
    chain = lineage.check_recorded(
        artifacts.read_json(artifacts.SPLIT_LINEAGE),
        ("prepare", "split"),
        [artifacts.VOCAB, artifacts.COUNTS],
        artifacts.SPLIT_LINEAGE,
    )
    # W's shape follows the context the counts were made with, as split recorded it.
    V = len(vocab)
    rows = check_size(V, artifacts.context_of(chain), artifacts.SPLIT_LINEAGE)
    check_budget((rows, V), train)
    # The train split alone: holding all three would cost memory training never uses.
    counts = artifacts.check_counts(counts, V, rows)[0].copy()
    chain = chain + [
        lineage.record("train", {"train": asdict(train)}, [artifacts.VOCAB, artifacts.COUNTS], [])
    ]
    # Every checkpoint carries its whole lineage and the digest of the one
    # before it, so a copy found anywhere can still be audited (`bigram lineage`).
    common = {
        "vocab": vocab,
        "lineage": chain,
        "code": lineage.code_identity(),
        "versions": lineage.versions(),
    }
    written: list[str] = []
    previous = None

    def save(step: int, W_step: np.ndarray, terms: tuple[float, float, float]) -> None:
        nonlocal previous
        loss, ce, reg = terms
        meta = {**common, "step": step, "loss": loss, "ce": ce, "reg": reg, "previous": previous}
        data = artifacts.checkpoint_bytes(W_step, meta)
        path = artifacts.checkpoint_path(step)
        artifacts.write_bytes(path, data)
        if step == train.steps:
            artifacts.write_bytes(artifacts.MODEL, data)
        previous = {
            "path": path,
            "md5": artifacts.md5_bytes(data),
            "sha256": artifacts.sha256_bytes(data),
        }
        written.append(path)

    # All outputs take their names together at the end, or none does.
    with fsio.stage_outputs():
        W, curve = fit(counts, train, show_progress=True, on_checkpoint=save)
        for stale in set(artifacts.checkpoint_paths()) - set(written):  # a longer earlier run's
            fsio.remove(stale)
        rows = "".join(f"{k},{a:.7g},{b:.7g},{c:.7g}\n" for k, (a, b, c) in enumerate(curve))
        artifacts.write_text(artifacts.LOSS_CURVE, "step,loss,ce,reg\n" + rows)
        loss, ce, reg = curve[-1].tolist()
        artifacts.write_json(artifacts.metrics_path("train"), {"loss": loss, "ce": ce, "reg": reg})
    progress(
        "train",
        f"{train.steps} steps at lr {train.lr}: loss {curve[0, 0]:.4f} -> "
        f"{loss:.4f}; {len(written)} checkpoints",
    )


if __name__ == "__main__":
    run_stage("train", main, __doc__)
