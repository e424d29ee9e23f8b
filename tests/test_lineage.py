"""bigram.lineage: what the stages record about their inputs, outputs and code."""

import hashlib
import subprocess

import pytest

from bigram import lineage
from bigram.console import PipelineError


def test_a_record_holds_the_params_and_the_md5_of_each_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_bytes(b"emma\n")
    (tmp_path / "b.bin").write_bytes(b"\x00" * 10)
    r = lineage.record("prepare", {"data": {"names": "a.txt"}}, ["a.txt"], ["b.bin"])
    assert r == {
        "stage": "prepare",
        "params": {"data": {"names": "a.txt"}},
        "inputs": {"a.txt": hashlib.md5(b"emma\n").hexdigest()},
        "outputs": {"b.bin": hashlib.md5(b"\x00" * 10).hexdigest()},
        "sha256": {
            "a.txt": hashlib.sha256(b"emma\n").hexdigest(),
            "b.bin": hashlib.sha256(b"\x00" * 10).hexdigest(),
        },
    }


def test_inputs_that_are_not_the_recorded_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    vocab, pairs = "data/prepared/vocab.json", "data/prepared/pairs.npy"
    (tmp_path / "data/prepared").mkdir(parents=True)
    for path in ("names.txt", vocab, pairs):
        (tmp_path / path).write_text("[]")
    data = {"data": {"names": "names.txt"}}
    chain = [lineage.record("prepare", data, ["names.txt"], [vocab, pairs])]
    assert lineage.check_recorded(chain, ("prepare",), [vocab, pairs], "lineage.json") == chain
    (tmp_path / vocab).write_text('["."]')
    with pytest.raises(PipelineError, match=f"{vocab} is not the file recorded in lineage.json"):
        lineage.check_recorded(chain, ("prepare",), [vocab, pairs], "lineage.json")
    with pytest.raises(PipelineError, match="lineage.json is not a lineage record"):
        lineage.check_recorded({"outputs": {}}, ("prepare",), [vocab], "lineage.json")
    forged = [{**chain[0], "outputs": {vocab: chain[0]["outputs"][vocab]}}]
    with pytest.raises(PipelineError, match="does not name the files that stage reads and"):
        lineage.check_recorded(forged, ("prepare",), [vocab], "lineage.json")


def test_code_identity_outside_git_is_said_not_invented(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages/train.py").write_text("")
    assert lineage.code_identity() == {
        "commit": None,
        "dirty": None,
        "reason": "trained outside a git repository",
    }


def test_code_identity_is_the_last_commit_of_the_train_code_and_its_dirtiness(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages/train.py").write_text("x = 1\n")
    for cmd in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "code"],
    ):
        subprocess.run(["git", *cmd], check=True)
    code_commit = lineage.git("rev-parse", "HEAD")
    (tmp_path / "README").write_text("docs\n")
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "docs"], check=True
    )
    assert lineage.code_identity() == {"commit": code_commit, "dirty": False}
    (tmp_path / "stages/train.py").write_text("x = 2\n")
    assert lineage.code_identity() == {"commit": code_commit, "dirty": True}


def test_versions_name_python_without_its_patch_release():
    v = lineage.versions()
    assert v["python"].count(".") == 1
    assert set(v) == {"python", "torch", "numpy", "safetensors", "dvc"}


def test_a_repository_git_refuses_is_recorded_as_refused_not_as_no_repository(
    tmp_path, monkeypatch
):
    import os

    if os.getuid() != 0:
        pytest.skip("needs root to hand the repository to another user")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no global safe.directory = *
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages/train.py").write_text("x = 1\n")
    subprocess.run(["git", "init", "-q"], check=True)
    os.chown(tmp_path, 65534, 65534)  # nobody's, as a repository on a shared disk
    try:
        assert lineage.code_identity() == {
            "commit": None,
            "dirty": None,
            "reason": "git refused the repository (owned by another user; see git's "
            "safe.directory)",
        }
    finally:
        os.chown(tmp_path, 0, 0)
