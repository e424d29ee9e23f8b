"""bigram.checkpoint: checkpoints are data, never code, and every schema stays readable."""

from pathlib import Path

import numpy as np
import pytest

from bigram import artifacts, checkpoint
from bigram.console import PipelineError


def meta(vocab, context=1):
    md5, sha256 = "0" * 32, "0" * 64
    params = {
        "prepare": {"data": {"names": "data/names.txt"}},
        "split": {
            "split": {"seed": 42, "train": 0.8, "dev": 0.1, "unit": "pairs"},
            "model": {"context": context},
        },
        "train": {"train": {"seed": 1, "lr": 1, "reg": 0, "steps": 1, "checkpoint_every": 1}},
    }
    files = {  # what each stage reads and writes
        "prepare": (["data/names.txt"], [artifacts.VOCAB, artifacts.PAIRS]),
        "split": ([artifacts.VOCAB, artifacts.PAIRS], [artifacts.SPLIT, artifacts.COUNTS]),
        "train": ([artifacts.VOCAB, artifacts.COUNTS], []),
    }
    chain = [
        {
            "stage": s,
            "params": p,
            "inputs": dict.fromkeys(files[s][0], md5),
            "outputs": dict.fromkeys(files[s][1], md5),
            "code": {f"stages/{s}.py": "0" * 40},
            "sha256": dict.fromkeys(files[s][0] + files[s][1], sha256),
        }
        for s, p in params.items()
    ]
    return {
        "vocab": vocab,
        "lineage": chain,
        "step": 1,
        "loss": 1.0,
        "ce": 1.0,
        "reg": 0.0,
        "previous": {
            "path": "models/checkpoints/step_000000.safetensors",
            "md5": md5,
            "sha256": sha256,
        },
        "schema": 2,
        "versions": {},
    }


def test_a_checkpoint_round_trips_bit_for_bit():
    W = np.arange(9, dtype=np.float32).reshape(3, 3) / 7
    data = checkpoint.to_bytes(W, meta([".", "a", "b"]))
    W2, meta2 = checkpoint.parse(data, "c")
    assert W2.tobytes() == W.tobytes() and meta2 == meta([".", "a", "b"])
    assert checkpoint.to_bytes(W, meta([".", "a", "b"])) == data  # deterministic bytes


@pytest.mark.parametrize(
    "W, reason",
    [
        (np.zeros((2, 2), np.float32), "W does not match its vocabulary"),
        (np.full((3, 3), np.nan, np.float32), "W has NaN or infinite entries"),
    ],
)
def test_a_checkpoint_whose_W_does_not_fit_is_refused(W, reason):
    data = checkpoint.to_bytes(W, meta([".", "a", "b"]))
    with pytest.raises(PipelineError, match=reason):
        checkpoint.parse(data, "c")


def test_a_checkpoint_whose_W_does_not_fit_its_recorded_context_is_refused():
    vocab = [".", "a", "b"]
    trigram = np.zeros((9, 3), np.float32)
    assert checkpoint.parse(checkpoint.to_bytes(trigram, meta(vocab, 2)), "c")
    for W, context in ((trigram, 1), (trigram, 3), (np.zeros((3, 3), np.float32), 2)):
        data = checkpoint.to_bytes(W, meta(vocab, context))
        with pytest.raises(PipelineError, match="W does not match its vocabulary and model.co"):
            checkpoint.parse(data, "c")
    # a context whose W could not exist is refused before its shape is computed
    data = checkpoint.to_bytes(trigram, meta(vocab, 32))
    with pytest.raises(PipelineError, match="model.context 32 is too large for its vocabulary"):
        checkpoint.parse(data, "c")


def test_a_checkpoint_of_another_vocabulary_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    path.write_bytes(checkpoint.to_bytes(np.zeros((3, 3), np.float32), meta([".", "a", "b"])))
    assert checkpoint.read(str(path))[1]["vocab"] == [".", "a", "b"]
    with pytest.raises(PipelineError, match="trained on another vocabulary"):
        checkpoint.read(str(path), [".", "a", "c"])


SCHEMA1 = Path(__file__).parent / "data/checkpoint-schema1.safetensors"


def test_a_schema_1_checkpoint_is_still_read():
    # The committed run's model at 0afbea0, before checkpoints recorded code by content;
    # its code commit is the last one that changed the train stage's code then.
    W, meta = checkpoint.read(str(SCHEMA1))
    assert checkpoint.schema_of(meta) == 1
    assert meta["code"] == {"commit": "54563242b5d6c5c278726dd333e1d2d29aec359f", "dirty": False}
    assert W.shape == (21, 21) and meta["step"] == 200 and meta["vocab"][:3] == [".", "a", "b"]


def test_a_record_with_a_param_this_code_does_not_know_is_read():
    m = meta([".", "a", "b"])
    m["lineage"][2]["params"]["train"]["momentum"] = 0.9  # a later version's key
    del m["lineage"][2]["params"]["train"]["reg"]  # an earlier version's lack
    W = np.zeros((3, 3), np.float32)
    assert checkpoint.parse(checkpoint.to_bytes(W, m), "c")[1] == m


@pytest.mark.parametrize(
    "change, reason",
    [
        (
            lambda m: m.update(schema=3),
            "written by a newer version of this pipeline \\(schema 3\\)",
        ),
        (lambda m: m.update(schema=0), "its schema 0 is not one this pipeline ever wrote"),
        (lambda m: m.pop("schema"), "its metadata lacks the lineage this pipeline writes"),
        (
            lambda m: m["lineage"][0]["code"].update({"x.py": "zz"}),
            "code is not paths with git blob",
        ),
        (lambda m: m["lineage"][1]["params"]["model"].pop("context"), "lack model.context"),
        (lambda m: m["lineage"][2]["params"]["train"].update(lr=[1]), "train.lr is not a plain"),
    ],
)
def test_metadata_outside_every_schema_is_refused(change, reason):
    m = meta([".", "a", "b"])
    change(m)
    with pytest.raises(PipelineError, match=reason):
        checkpoint.parse(checkpoint.to_bytes(np.zeros((3, 3), np.float32), m), "c")
