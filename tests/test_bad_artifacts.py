"""An earlier stage's outputs edited by hand, stale, forged or huge: the stage that reads
them refuses them in one exact line naming the file and the fix (`dvc repro`), without
reading more than it needs."""

import json

import numpy as np
import pytest

from bigram import artifacts
from bigram.console import PipelineError
from tests.conftest import error_line, set_params, stage

# --- the vocabulary ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda v: v[:1] + v[2:] + v[1:2],
            "data/prepared/vocab.json is not the file recorded in "
            "data/prepared/lineage.json; run `dvc repro` to rebuild both",
        ),
        (
            lambda v: v[1:],
            "data/prepared/vocab.json is not a vocabulary (a JSON list of distinct "
            "characters, '.' first); run `dvc repro` to rebuild it",
        ),
        (
            lambda v: v[:-1],
            "data/prepared/pairs.npy does not match data/prepared/vocab.json; "
            "run `dvc repro` to rebuild both",
        ),
        (None, "data/prepared/vocab.json is not valid JSON; run `dvc repro` to rebuild it"),
    ],
)
def test_vocabulary_edited_by_hand(trained, edit, message):
    path = trained / "data/prepared/vocab.json"
    if edit is None:
        path.write_text('["." "a"')
    else:
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    assert error_line(stage(trained, "split", check=False)) == message


# --- lineage files ---------------------------------------------------------------------------

LINEAGE = "data/prepared/lineage.json"
LINEAGE_REFUSED = {  # content -> the exact message
    "a record without its keys": (
        '[{"stage": "x"}]',
        f"{LINEAGE} is not a lineage record (a record is not "
        "{stage, params, inputs, outputs, sha256, code}); run `dvc repro` to rebuild it",
    ),
    "a number for a record": (
        "[1]",
        f"{LINEAGE} is not a lineage record (a record is not "
        "{stage, params, inputs, outputs, sha256, code}); run `dvc repro` to rebuild it",
    ),
    "not a list": (
        '{"a": 1}',
        f"{LINEAGE} is not a lineage record (not a list of the prepare records); "
        "run `dvc repro` to rebuild it",
    ),
    "a list for a stage name": (
        '[{"stage": ["prepare"], "params": {}, "inputs": {}, "outputs": {}, "sha256": {}, '
        '"code": {}}]',
        f"{LINEAGE} is not a lineage record (unknown stage \"['prepare']\"); "
        "run `dvc repro` to rebuild it",
    ),
    # nested 100,000 deep: not a RecursionError
    "nested 100,000 deep": (
        "[" * 100_000 + "]" * 100_000,
        f"{LINEAGE} is not valid JSON; run `dvc repro` to rebuild it",
    ),
}


@pytest.mark.parametrize("case", LINEAGE_REFUSED)
def test_a_lineage_file_edited_by_hand(trained, case):
    content, message = LINEAGE_REFUSED[case]
    (trained / LINEAGE).write_text(content)
    assert error_line(stage(trained, "split", check=False)) == message


def test_a_lineage_file_of_100_mb_is_refused_unread(trained):
    with open(trained / "data/split/lineage.json", "wb") as f:
        f.truncate(100 * 10**6)
    assert error_line(stage(trained, "train", check=False)) == (
        "data/split/lineage.json is 100,000,000 bytes, over the limit of 4,194,304; "
        "run `dvc repro` to rebuild it"
    )


# --- the counts --------------------------------------------------------------------------------


def test_forged_counts_that_overflow_are_refused_in_one_line(trained):
    counts = np.load(trained / "data/split/counts.npy")
    counts[:] = 2**62
    np.save(trained / "data/split/counts.npy", counts)
    for name in ("evaluate", "compare"):
        assert error_line(stage(trained, name, check=False)) == (
            "data/split/counts.npy counts more than 2**53 pairs; run `dvc repro` to rebuild it"
        )


def test_a_bigram_model_with_trigram_counts_is_one_line_naming_the_fix(trained):
    # split rerun by hand with a new context, train not: the model is a stage behind
    set_params(trained, model__context=2)
    stage(trained, "split")
    for name in ("evaluate", "compare"):
        assert error_line(stage(trained, name, check=False)) == (
            "data/split/counts.npy holds int64 (3, 441, 21), not the int64 (3, 21, 21) counts "
            "that data/prepared/vocab.json and the model's context need; run `dvc repro` to "
            "rebuild what is stale"
        )


def test_an_npy_header_claiming_terabytes_is_refused_unread(trained):
    path = trained / "data/split/counts.npy"
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    forged = data[:header_end].replace(b"(3, 21, 21)", b"(3, 999999, 999999)")
    with pytest.raises(PipelineError, match=r"^data/split/counts.npy is not a valid .npy array"):
        artifacts.load_npy(forged + data[header_end:], "data/split/counts.npy")
    path.write_bytes(forged + data[header_end:])  # the stage reads it bounded, then refuses it
    assert error_line(stage(trained, "train", check=False)) == (
        "data/split/counts.npy is not the file recorded in data/split/lineage.json; "
        "run `dvc repro` to rebuild both"
    )
