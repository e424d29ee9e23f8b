"""bigram.artifacts: atomic writes, and checkpoints that are data, never code."""

import json

import numpy as np
import pytest

from bigram import artifacts
from bigram.console import PipelineError


def test_a_failed_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "m.json"
    artifacts.write_json(str(path), {"a": 1})
    with pytest.raises(ValueError), artifacts.atomic(path) as f:
        f.write('{"half": ')
        raise ValueError("the process dies here")
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary left


def meta(vocab):
    train = {"seed": 1, "lr": 1, "reg": 0, "steps": 1, "checkpoint_every": 1}
    return {
        "vocab": vocab,
        "lineage": [{"stage": "train", "params": {"train": train}, "inputs": {}, "outputs": {}}],
        "step": 1,
        "loss": 1.0,
        "ce": 1.0,
        "reg": 0.0,
        "previous": None,
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


def test_a_checkpoint_of_another_vocabulary_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    path.write_bytes(
        artifacts.checkpoint_bytes(np.zeros((3, 3), np.float32), meta([".", "a", "b"]))
    )
    assert artifacts.read_checkpoint(str(path))[1]["vocab"] == [".", "a", "b"]
    with pytest.raises(PipelineError, match="trained on another vocabulary"):
        artifacts.read_checkpoint(str(path), [".", "a", "c"])
