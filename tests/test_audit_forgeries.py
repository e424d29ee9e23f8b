"""`bigram lineage --verify` re-derives the chain: forgeries re-recorded consistently
(lineage files, the checkpoint retrained by the project's own train stage, dvc.lock)
are caught, and the line names the first stage that differs and where."""

import hashlib
import json
import re
import shutil
import sys

import numpy as np
import pytest
import yaml

from bigram import artifacts, checkpoint
from bigram.splitting import split_counts
from tests.conftest import STAGES, dvc, sh, stage

MODEL = "models/model.safetensors"
pytestmark = pytest.mark.slow


def verify(repo, *args):
    return sh([sys.executable, "-m", "bigram", "lineage", "--verify", *args, MODEL], repo, False)


def caught(result, pattern):
    print(result.stdout)  # shown with -s: the lines a user reads
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(pattern, result.stdout, re.M), (pattern, result.stdout)
    assert "bit-identical" not in result.stdout


def rerecord(repo, lineage_file, changed, rerun):
    """Re-record `changed` files in `lineage_file`, rerun the stages after it with the
    project's own code, and make dvc.lock agree: a forgery no digest gives away."""
    chain = json.loads((repo / lineage_file).read_text())
    for path in changed:
        data = (repo / path).read_bytes()
        for link in chain:
            if path in link["outputs"]:
                link["outputs"][path] = hashlib.md5(data).hexdigest()
                link["sha256"][path] = hashlib.sha256(data).hexdigest()
    (repo / lineage_file).write_bytes(artifacts.json_bytes(chain))
    for name in rerun:
        stage(repo, name)
    dvc(repo, "commit", "-f", "-q")
    assert dvc(repo, "status", "-q", check=False).returncode == 0  # DVC sees nothing amiss


def save_npy(repo, path, array):
    (repo / path).write_bytes(artifacts.npy_bytes(np.ascontiguousarray(array)))


def load(repo, path):
    return np.load(repo / path).copy()


def test_an_inflated_count_is_named_by_its_cell(trained_repo):
    counts = load(trained_repo, artifacts.COUNTS)
    vocab = json.loads((trained_repo / artifacts.VOCAB).read_text())
    a, n = vocab.index("a"), vocab.index("n")
    true = counts[0, a, n]
    counts[0, a, n] += 5000
    save_npy(trained_repo, artifacts.COUNTS, counts)
    rerecord(trained_repo, artifacts.SPLIT_LINEAGE, [artifacts.COUNTS], ["train"])
    caught(
        verify(trained_repo),
        rf"^split: data/split/counts.npy is not what split derives from the recorded inputs: "
        rf"1 count cells differ; first \(context 'a', next 'n', split train\): "
        rf"recorded {true + 5000}, re-derived {true}$",
    )


def test_forged_dev_counts_are_caught_though_training_never_reads_them(trained_repo):
    counts = load(trained_repo, artifacts.COUNTS)
    counts[1] = counts[0]  # dev NLL would look like train NLL
    save_npy(trained_repo, artifacts.COUNTS, counts)
    rerecord(trained_repo, artifacts.SPLIT_LINEAGE, [artifacts.COUNTS], ["train", "evaluate"])
    caught(verify(trained_repo), r"^split: data/split/counts.npy .* split dev\)")


def test_rewritten_pairs_are_named_by_the_first_pair(trained_repo):
    vocab = json.loads((trained_repo / artifacts.VOCAB).read_text())
    pairs = load(trained_repo, artifacts.PAIRS)
    a, e = vocab.index("a"), vocab.index("e")
    first = int(np.flatnonzero(pairs[1] == a)[0])
    pairs[1][pairs[1] == a] = e
    save_npy(trained_repo, artifacts.PAIRS, pairs)
    rerecord(trained_repo, artifacts.PREPARE_LINEAGE, [artifacts.PAIRS], ["split", "train"])
    prev = repr(vocab[pairs[0, first]])
    caught(
        verify(trained_repo),
        rf"^prepare: data/prepared/pairs.npy is not what prepare derives .*: \d+ symbols in 130 "
        rf"pairs differ; first pair {first}: recorded \({re.escape(prev)}, 'e'\), "
        rf"re-derived \({re.escape(prev)}, 'a'\)$",
    )


def test_a_train_test_leak_in_the_split_is_caught(trained_repo):
    assign = load(trained_repo, artifacts.SPLIT)
    leaked = assign.copy()
    leaked[assign == 2] = 0  # the test pairs also in train
    pairs = load(trained_repo, artifacts.PAIRS)
    vocab = json.loads((trained_repo / artifacts.VOCAB).read_text())
    save_npy(trained_repo, artifacts.SPLIT, leaked)
    save_npy(trained_repo, artifacts.COUNTS, split_counts(pairs, leaked, len(vocab)))
    rerecord(trained_repo, artifacts.SPLIT_LINEAGE, [artifacts.SPLIT, artifacts.COUNTS], ["train"])
    first = int(np.flatnonzero(assign == 2)[0])
    caught(
        verify(trained_repo),
        rf"^split: data/split/split.npy .*: 13 of 130 units are in another split; first unit "
        rf"{first}: recorded train, re-derived test$",
    )


def test_swapped_vocabulary_entries_are_named(trained_repo):
    vocab = json.loads((trained_repo / artifacts.VOCAB).read_text())
    vocab[1], vocab[2] = vocab[2], vocab[1]
    (trained_repo / artifacts.VOCAB).write_bytes(artifacts.json_bytes(vocab))
    rerecord(trained_repo, artifacts.PREPARE_LINEAGE, [artifacts.VOCAB], ["split", "train"])
    caught(
        verify(trained_repo),
        r"^prepare: data/prepared/vocab.json .*: entries 1, 2: recorded \['b', 'a'\], "
        r"re-derived \['a', 'b'\]$",
    )


def forge_checkpoint(repo, change):
    W, meta = checkpoint.parse((repo / MODEL).read_bytes(), MODEL)
    change(meta)
    data = checkpoint.to_bytes(W, meta)
    (repo / MODEL).write_bytes(data)
    (repo / "models/checkpoints/step_000200.safetensors").write_bytes(data)
    dvc(repo, "commit", "-f", "-q")


def test_a_permuted_vocabulary_in_the_checkpoint_is_caught(trained_repo):
    def permute(meta):
        meta["vocab"][1], meta["vocab"][2] = meta["vocab"][2], meta["vocab"][1]

    forge_checkpoint(trained_repo, permute)
    caught(
        verify(trained_repo),
        r"^train: models/model.safetensors is not the checkpoint re-derived from data/names.txt "
        r"at step 200: its vocabulary \(entries 1, 2: recorded \['b', 'a'\], re-derived "
        r"\['a', 'b'\]\)$",
    )


def test_forged_loss_terms_and_versions_are_caught(trained_repo):
    def forge(meta):
        meta["ce"] += 0.5
        meta["versions"]["torch"] = "9.9.9"

    forge_checkpoint(trained_repo, forge)
    caught(
        verify(trained_repo),
        r"^train: models/model.safetensors is not the checkpoint re-derived from data/names.txt "
        r"at step 200: ce: recorded [\d.]+, re-derived [\d.]+; versions.torch: recorded '9.9.9', "
        r"re-derived None$",  # the versions are the pins in pyproject.toml: re-derived too
    )


def test_an_earlier_checkpoint_copied_over_the_model_is_caught(trained_repo):
    shutil.copy(trained_repo / "models/checkpoints/step_000150.safetensors", trained_repo / MODEL)
    r = verify(trained_repo)
    caught(r, r"^models/model.safetensors holds the step-150 checkpoint, but the final model")
    caught(
        r,
        r"^models/model.safetensors: md5 \w+, but dvc.lock \(train\) records \w+ for "
        r"models/model.safetensors$",
    )


def test_a_names_file_changed_behind_its_dvc_file_is_caught(trained_repo):
    path = trained_repo / "data/names-full.txt"
    path.write_text("emma\nolivia\nava\nisabella\nsophia\n")
    dvc(trained_repo, "add", "-q", "data/names-full.txt")
    params = yaml.safe_load((trained_repo / "params.yaml").read_text())
    params["data"]["names"] = "data/names-full.txt"
    (trained_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(trained_repo, "repro", "-q")
    assert verify(trained_repo).returncode == 0
    path.write_text("emma\nolivia\nava\nmia\n")  # replaced; dvc.lock re-recorded, .dvc not
    before = (trained_repo / "data/names-full.txt.dvc").read_text()
    for name in STAGES:
        stage(trained_repo, name)
    dvc(trained_repo, "commit", "-f", "-q", *STAGES)
    assert (trained_repo / "data/names-full.txt.dvc").read_text() == before
    caught(
        verify(trained_repo),
        r"^data/names-full.txt.dvc records md5 \w+, but the checkpoint was trained on md5 \w+; "
        r"`dvc add data/names-full.txt` then `dvc repro` makes them one$",
    )
