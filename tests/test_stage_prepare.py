"""stages/prepare.py: the names file into vocabulary, pairs and their lineage."""

import hashlib

import numpy as np

from bigram.names import encode
from tests.conftest import NOTEBOOK_NAMES, read_json, stage


def test_prepare_writes_the_encoded_names_and_records_the_names_file(trained_project):
    d = trained_project
    vocab, pairs = encode(NOTEBOOK_NAMES)
    assert read_json(d / "data/prepared/vocab.json") == vocab
    assert np.array_equal(np.load(d / "data/prepared/pairs.npy"), pairs)
    assert read_json(d / "metrics/prepare.json") == {
        "names": 20,
        "pairs": pairs.shape[1],
        "vocab_size": len(vocab),
    }
    (link,) = read_json(d / "data/prepared/lineage.json")
    names_md5 = hashlib.md5((d / "data/names.txt").read_bytes()).hexdigest()
    assert link["stage"] == "prepare" and link["inputs"] == {"data/names.txt": names_md5}


def test_a_names_file_edited_while_prepare_runs_is_never_recorded_as_used(
    trained_project, monkeypatch
):
    from stages import prepare

    d = trained_project
    monkeypatch.chdir(d)
    used = (d / "data/names.txt").read_bytes()
    parse = prepare.parse_names

    def parse_then_edit(data, source):
        names = parse(data, source)
        (d / "data/names.txt").write_text("zelda\n")  # edited after the stage read it
        return names

    monkeypatch.setattr(prepare, "parse_names", parse_then_edit)
    prepare.main()
    (link,) = read_json(d / "data/prepared/lineage.json")
    assert link["inputs"] == {"data/names.txt": hashlib.md5(used).hexdigest()}
    assert link["sha256"]["data/names.txt"] == hashlib.sha256(used).hexdigest()
    assert read_json(d / "data/prepared/vocab.json") == encode(NOTEBOOK_NAMES)[0]


def test_the_vocabulary_is_written_as_readable_utf8(project):
    (project / "data/names.txt").write_text("Zoë\nÁron\n", encoding="utf-8")
    stage(project, "prepare")
    text = (project / "data/prepared/vocab.json").read_bytes().decode("utf-8")
    assert '"ë"' in text and '"Á"' in text and "\\u" not in text
