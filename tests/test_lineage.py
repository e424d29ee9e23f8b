"""bigram.lineage: what the stages record about their inputs, outputs and code."""

import hashlib

import pytest

from bigram import lineage
from bigram.console import PipelineError


def test_a_record_holds_the_params_and_the_digests_of_the_bytes_given():
    code = {"stages/prepare.py": "1" * 40}
    r = lineage.record(
        "prepare", {"data": {"names": "a.txt"}}, {"a.txt": b"emma\n"}, {"b.bin": b"\0" * 10}, code
    )
    assert r == {
        "stage": "prepare",
        "params": {"data": {"names": "a.txt"}},
        "inputs": {"a.txt": hashlib.md5(b"emma\n").hexdigest()},
        "outputs": {"b.bin": hashlib.md5(b"\x00" * 10).hexdigest()},
        "sha256": {
            "a.txt": hashlib.sha256(b"emma\n").hexdigest(),
            "b.bin": hashlib.sha256(b"\x00" * 10).hexdigest(),
        },
        "code": code,
    }


def test_inputs_that_are_not_the_recorded_files_are_refused():
    vocab, pairs = "data/prepared/vocab.json", "data/prepared/pairs.npy"
    data = {"data": {"names": "names.txt"}}
    files = {vocab: b"[]", pairs: b"[]"}
    chain = [lineage.record("prepare", data, {"names.txt": b"[]"}, files, {})]
    assert lineage.check_recorded(chain, ("prepare",), files, "lineage.json") == chain
    with pytest.raises(PipelineError, match=f"{vocab} is not the file recorded in lineage.json"):
        lineage.check_recorded(chain, ("prepare",), {vocab: b'["."]'}, "lineage.json")
    with pytest.raises(PipelineError, match="lineage.json is not a lineage record"):
        lineage.check_recorded({"outputs": {}}, ("prepare",), files, "lineage.json")
    forged = [{**chain[0], "outputs": {vocab: chain[0]["outputs"][vocab]}}]
    with pytest.raises(PipelineError, match="does not name the files that stage reads and"):
        lineage.check_recorded(forged, ("prepare",), files, "lineage.json")


def test_a_stages_code_is_its_files_content_whatever_git_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no git repository at all
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages/train.py").write_text("x = 1\n")
    first = lineage.stage_code("train")
    assert set(first) == {"stages/train.py"}
    (tmp_path / "stages/train.py").write_text("x = 2\n")
    assert lineage.stage_code("train") != first
    (tmp_path / "stages/train.py").write_text("x = 1\n")
    assert lineage.stage_code("train") == first
