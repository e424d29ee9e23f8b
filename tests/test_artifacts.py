"""bigram.artifacts: atomic writes, and checkpoints that are data, never code."""

import numpy as np
import pytest

from bigram import artifacts
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
        "code": {"commit": None, "dirty": None},
        "versions": {},
    }


def test_a_checkpoint_round_trips_bit_for_bit():
    W = np.arange(9, dtype=np.float32).reshape(3, 3) / 7
    data = artifacts.checkpoint_bytes(W, meta([".", "a", "b"]))
    W2, meta2 = artifacts.parse_checkpoint(data, "c")
    assert W2.tobytes() == W.tobytes() and meta2 == meta([".", "a", "b"])
    assert artifacts.checkpoint_bytes(W, meta([".", "a", "b"])) == data  # deterministic bytes


@pytest.mark.parametrize(
    "W, reason",
    [
        (np.zeros((2, 2), np.float32), "W does not match its vocabulary"),
        (np.full((3, 3), np.nan, np.float32), "W has NaN or infinite entries"),
    ],
)
def test_a_checkpoint_whose_W_does_not_fit_is_refused(W, reason):
    data = artifacts.checkpoint_bytes(W, meta([".", "a", "b"]))
    with pytest.raises(PipelineError, match=reason):
        artifacts.parse_checkpoint(data, "c")


def test_a_checkpoint_whose_W_does_not_fit_its_recorded_context_is_refused():
    vocab = [".", "a", "b"]
    trigram = np.zeros((9, 3), np.float32)
    assert artifacts.parse_checkpoint(artifacts.checkpoint_bytes(trigram, meta(vocab, 2)), "c")
    for W, context in ((trigram, 1), (trigram, 3), (np.zeros((3, 3), np.float32), 2)):
        data = artifacts.checkpoint_bytes(W, meta(vocab, context))
        with pytest.raises(PipelineError, match="W does not match its vocabulary and model.co"):
            artifacts.parse_checkpoint(data, "c")
    # a context whose W could not exist is refused before its shape is computed
    data = artifacts.checkpoint_bytes(trigram, meta(vocab, 32))
    with pytest.raises(PipelineError, match="model.context 32 is too large for its vocabulary"):
        artifacts.parse_checkpoint(data, "c")


def test_a_checkpoint_of_another_vocabulary_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    path.write_bytes(
        artifacts.checkpoint_bytes(np.zeros((3, 3), np.float32), meta([".", "a", "b"]))
    )
    assert artifacts.read_checkpoint(str(path))[1]["vocab"] == [".", "a", "b"]
    with pytest.raises(PipelineError, match="trained on another vocabulary"):
        artifacts.read_checkpoint(str(path), [".", "a", "c"])
