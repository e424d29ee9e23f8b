"""stages/prepare.py: the names file into vocabulary, pairs and their lineage."""

import hashlib

import numpy as np

from bigram.names import encode
from tests.conftest import NOTEBOOK_NAMES, read_json


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
