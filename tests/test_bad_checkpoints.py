"""A checkpoint that is truncated, stale, foreign, a pickle or forged: the stages and
`bigram lineage` refuse it in one line before using anything in it, and auditing an
untrusted one never reads what it names outside the project or from a FIFO."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from bigram.console import PipelineError
from tests.conftest import bigram, error_line, stage

NAMES = "data/names.txt"
MODEL = "models/model.safetensors"

# --- what the stages read ------------------------------------------------------------------


def test_truncated_checkpoint(trained):
    model = trained / MODEL
    model.write_bytes(model.read_bytes()[:300])
    line = error_line(stage(trained, "evaluate", check=False))
    assert line.startswith("models/model.safetensors is not a checkpoint of this pipeline (")
    assert line.endswith("); run `dvc repro` to rebuild it")


def test_checkpoint_trained_on_another_vocabulary(trained):
    (trained / NAMES).write_text("xyz\nzyx\n" * 20)
    stage(trained, "prepare")
    stage(trained, "split")
    assert error_line(stage(trained, "evaluate", check=False)) == (
        "models/model.safetensors was trained on another vocabulary than "
        "data/prepared/vocab.json; run `dvc repro` to retrain it"
    )


def test_pickle_renamed_as_checkpoint_is_refused_and_never_runs(trained, tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (trained / MODEL).write_bytes(pickle.dumps(Payload()))
    line = error_line(stage(trained, "evaluate", check=False))
    assert line.startswith("models/model.safetensors is not a checkpoint of this pipeline")
    assert not marker.exists()


def test_a_foreign_safetensors_file_is_refused_in_one_line(trained, tmp_path):
    from safetensors.numpy import save_file

    vocab = json.loads((trained / "data/prepared/vocab.json").read_text())
    V = len(vocab)
    foreign = tmp_path / "foreign.safetensors"
    save_file(
        {"W": np.zeros((V, V), np.float32)},
        str(foreign),
        metadata={"pipeline": json.dumps({"vocab": vocab, "lineage": []})},
    )
    problem = "is not a checkpoint of this pipeline (its metadata lacks the lineage"
    for args in (["lineage", str(foreign)], ["lineage", "--verify", str(foreign)]):
        assert problem in error_line(bigram(trained, *args))
    (trained / MODEL).write_bytes(foreign.read_bytes())
    assert problem in error_line(stage(trained, "evaluate", check=False))


# --- auditing an untrusted checkpoint is safe ----------------------------------------------


def forge(trained, edit, name="forged.safetensors"):
    """A copy of the model whose metadata `edit` has changed, written without checks."""
    from bigram import checkpoint

    W, meta = checkpoint.parse((trained / MODEL).read_bytes(), MODEL)
    edit(meta)
    (trained / name).write_bytes(checkpoint.to_bytes(W, meta))
    return name


def lineage(trained, *args, timeout=60):
    return bigram(trained, "lineage", *args, timeout=timeout)


def set_train(key, value):
    return lambda m: m["lineage"][2]["params"]["train"].update({key: value})


@pytest.mark.parametrize(
    "edit, problem",
    [
        (
            lambda m: m["lineage"][2]["code"].update({"stages/train.py": 12345}),
            "lineage: the train code is not paths with git blob ids",
        ),
        (
            lambda m: m["previous"].update(path=["a", "b"]),
            "its previous checkpoint is not a checkpoint path with its md5 and sha256",
        ),
        (set_train("lr", "fast"), "lineage: train.lr = 'fast' is not allowed"),
        (lambda m: m.update(step=10**13), "its step is not an integer from 0 to train.steps"),
        (
            lambda m: m.update(step=5 * 10**7) or set_train("steps", 5 * 10**7)(m),
            "lineage: train.steps = 50000000 is not allowed",
        ),
        (
            lambda m: m["lineage"][0]["inputs"].update({"x": 1}),
            "lineage: the prepare inputs are not paths with md5 digests",
        ),
        (lambda m: m.update(vocab="abc"), "its vocabulary is not a list of distinct characters"),
    ],
)
def test_forged_metadata_is_refused_in_one_line_before_use(trained, edit, problem):
    name = forge(trained, edit)
    for args in ([name], ["--verify", name], ["--json", name]):
        line = error_line(lineage(trained, *args))
        assert line.startswith(f"{name} is not a checkpoint of this pipeline (")
        assert problem in line


def test_the_audit_never_reads_a_fifo_a_checkpoint_names(trained):
    os.mkfifo(trained / "data/names.fifo")

    def edit(meta):
        prepare = meta["lineage"][0]
        prepare["params"]["data"]["names"] = "data/names.fifo"
        prepare["inputs"] = {"data/names.fifo": "0" * 32}
        prepare["sha256"] = {**prepare["sha256"], "data/names.fifo": "0" * 64}
        del prepare["sha256"]["data/names.txt"]

    name = forge(trained, edit)
    r = lineage(trained, "--verify", name, timeout=30)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    found = "not read: data/names.fifo is a FIFO (named pipe), not a file"
    assert f"data/names.fifo md5: recorded '{'0' * 32}', found '{found}'" in r.stdout


@pytest.mark.parametrize("path", ["/dev/zero", "../../../../etc/passwd"])
def test_a_checkpoint_naming_a_file_outside_the_project_is_refused_unread(trained, path):
    def edit(meta):
        prepare = meta["lineage"][0]
        prepare["params"]["data"]["names"] = path
        prepare["inputs"] = {path: "0" * 32}
        prepare["sha256"] = {**prepare["sha256"], path: "0" * 64}
        del prepare["sha256"]["data/names.txt"]

    name = forge(trained, edit)
    line = error_line(lineage(trained, "--verify", name, timeout=30))
    assert line.startswith(f"{name} is not a checkpoint of this pipeline (lineage: ")
    assert "outside the project" in line


def test_a_checkpoint_whose_train_record_omits_the_counts_is_refused(trained):
    name = forge(trained, lambda m: m["lineage"][2].update(inputs={}, sha256={}))
    line = error_line(lineage(trained, "--verify", name))
    assert "the train record does not name the files that stage reads and writes" in line


def test_a_schema_1_commit_without_its_dirtiness_is_refused():
    from bigram import checkpoint

    old = Path(__file__).parent / "data/checkpoint-schema1.safetensors"
    W, meta = checkpoint.read(str(old))
    meta["code"].update(commit="a" * 40, dirty=None)
    with pytest.raises(PipelineError, match=r"its code record is not \{commit, dirty\}"):
        checkpoint.parse(checkpoint.to_bytes(W, meta), "old.safetensors")
