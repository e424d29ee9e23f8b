"""stages/train.py: checkpoints at the steps asked for, the final one as the model."""

import numpy as np

from bigram import artifacts, checkpoint
from bigram.params import TrainParams
from bigram.training import fit
from tests.conftest import read_json


def test_train_writes_checkpoints_the_model_and_the_curve(trained_project, monkeypatch):
    monkeypatch.chdir(trained_project)
    steps = [int(p[-18:-12]) for p in artifacts.checkpoint_paths()]
    assert steps == [0, 50, 100, 150, 200]
    W, meta = checkpoint.read()
    assert meta["step"] == 200
    assert open(artifacts.MODEL, "rb").read() == open(artifacts.checkpoint_path(200), "rb").read()
    counts = np.load(artifacts.COUNTS)[0]
    W_again, curve = fit(counts, TrainParams(42, 50, 0.01, 200, 50))
    assert W.tobytes() == W_again.tobytes()
    assert read_json(artifacts.metrics_path("train")) == dict(
        zip(("loss", "ce", "reg"), curve[-1].tolist())
    )
    rows = open(artifacts.LOSS_CURVE).read().splitlines()
    assert rows[0] == "step,loss,ce,reg" and len(rows) == 202
