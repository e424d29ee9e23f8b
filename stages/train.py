"""Stage 3, train: the V×V weight matrix W by gradient descent on the train split.

Reads   params.yaml (train), data/prepared/vocab.json, data/split/counts.npy,
        data/split/lineage.json
Writes  models/model.safetensors (the final W), models/checkpoints/step_NNNNNN.safetensors,
        plots/train_loss.csv, metrics/train.json
"""

import os
from dataclasses import asdict

from bigram import artifacts, lineage, params
from bigram.console import progress, run_stage
from bigram.training import fit


def main() -> None:
    train = params.load().train
    vocab = artifacts.read_vocab()
    counts = artifacts.read_counts(len(vocab))
    chain = lineage.check_recorded(
        artifacts.read_json(artifacts.SPLIT_LINEAGE),
        [artifacts.VOCAB, artifacts.COUNTS],
        artifacts.SPLIT_LINEAGE,
    )
    chain = chain + [
        lineage.record("train", {"train": asdict(train)}, [artifacts.VOCAB, artifacts.COUNTS], [])
    ]
    W, curve, snapshots = fit(counts[0], train, show_progress=True)
    # Every checkpoint carries its whole lineage and the digest of the one
    # before it, so a copy found anywhere can still be audited (`bigram lineage`).
    common = {
        "vocab": vocab,
        "lineage": chain,
        "code": lineage.code_identity(),
        "versions": lineage.versions(),
    }
    written = {artifacts.checkpoint_path(step) for step in snapshots}
    for stale in set(artifacts.checkpoint_paths()) - written:  # from an earlier, longer run
        os.unlink(stale)
    previous = None
    for step, W_step in snapshots.items():
        loss, ce, reg = (float(v) for v in curve[step])
        meta = {**common, "step": step, "loss": loss, "ce": ce, "reg": reg, "previous": previous}
        data = artifacts.checkpoint_bytes(W_step, meta)
        path = artifacts.checkpoint_path(step)
        artifacts.write_bytes(path, data)
        previous = {"path": path, "md5": artifacts.md5_bytes(data)}
    artifacts.write_bytes(artifacts.MODEL, data)
    rows = "".join(f"{k},{a:.7g},{b:.7g},{c:.7g}\n" for k, (a, b, c) in enumerate(curve))
    artifacts.write_text(artifacts.LOSS_CURVE, "step,loss,ce,reg\n" + rows)
    artifacts.write_json(artifacts.metrics_path("train"), {"loss": loss, "ce": ce, "reg": reg})
    progress(
        "train",
        f"{train.steps} steps at lr {train.lr}: loss {curve[0, 0]:.4f} -> "
        f"{loss:.4f}; {len(snapshots)} checkpoints",
    )


if __name__ == "__main__":
    run_stage("train", main, __doc__)
