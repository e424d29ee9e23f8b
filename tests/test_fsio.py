"""bigram.fsio: bounded reads of regular files, all-or-nothing writes, one-line errors."""

import errno
import json
import os
import subprocess
import sys

import pytest

from bigram import artifacts, fsio
from bigram.console import PipelineError


def test_a_failed_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "m.json"
    artifacts.write_json(str(path), {"a": 1})
    with pytest.raises(ValueError), fsio.atomic(path) as f:
        f.write('{"half": ')
        raise ValueError("the process dies here")
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary left


def test_a_stages_outputs_change_together_or_not_at_all(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    artifacts.write_text("a.txt", "old a")
    artifacts.write_text("b/b.txt", "old b")
    with pytest.raises(PipelineError), fsio.stage_outputs():
        artifacts.write_text("a.txt", "new a")
        assert open("a.txt").read() == "old a"  # nothing is renamed before the end
        raise PipelineError("the stage fails after its first output")
    assert (open("a.txt").read(), open("b/b.txt").read()) == ("old a", "old b")
    with fsio.stage_outputs():
        artifacts.write_text("a.txt", "new a")
        artifacts.write_text("b/b.txt", "new b")
        fsio.remove("gone.txt")
    assert (open("a.txt").read(), open("b/b.txt").read()) == ("new a", "new b")
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b"] and os.listdir("b") == ["b.txt"]


def test_a_full_disk_keeps_every_previous_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    artifacts.write_json("m.json", {"old": True})
    artifacts.write_text("t.txt", "old")
    real_open = open

    def full(path, *args, **kwargs):
        if str(path).endswith(".tmp") and "t.txt" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full)
    with pytest.raises(PipelineError) as e, fsio.stage_outputs():
        artifacts.write_json("m.json", {"old": False})
        artifacts.write_text("t.txt", "new")
    assert str(e.value) == (
        "cannot write t.txt: no space left on the disk; free some space and run again; "
        "the previous outputs are kept"
    )
    monkeypatch.undo()
    assert json.loads((tmp_path / "m.json").read_text()) == {"old": True}
    assert sorted(os.listdir(tmp_path)) == ["m.json", "t.txt"]


def test_a_file_where_a_directory_should_be_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("models")
    open("models/checkpoints", "w").close()
    with pytest.raises(
        PipelineError,
        match=r"^cannot write models/checkpoints/step_000000.safetensors: "
        r"models/checkpoints is a file where a directory should be",
    ):
        artifacts.write_bytes("models/checkpoints/step_000000.safetensors", b"x")


def test_temporary_files_of_dead_runs_are_swept_but_never_a_live_runs(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        (tmp_path / f".a.json.{live.pid}.tmp").write_text("being written")
        (tmp_path / f".a.json.{dead.pid}.tmp").write_text("left by a killed run")
        fsio._swept.discard(tmp_path)
        with fsio.atomic(tmp_path / "b.json") as f:
            f.write("{}")
        assert sorted(p.name for p in tmp_path.iterdir()) == [f".a.json.{live.pid}.tmp", "b.json"]
    finally:
        live.kill()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: os.mkfifo(p), "is a FIFO (named pipe), not a file"),
        (lambda p: os.symlink("/dev/zero", p), "is a character device, not a file"),
        (lambda p: os.mkdir(p), "is a directory, not a file"),
        (lambda p: os.symlink(p, p), "too many levels of symbolic links (a symlink loop?)"),
        (lambda p: open(p, "wb").write(b"x" * 101), "is 101 bytes, over the limit of 100"),
    ],
)
def test_a_bounded_read_refuses_what_would_hang_or_never_end(tmp_path, make, message):
    path = tmp_path / "names.txt"
    make(path)
    with pytest.raises(PipelineError) as e:
        fsio.read_bounded(path, 100, "point data.names at a names file")
    assert message in str(e.value) and str(e.value).endswith("point data.names at a names file")


def test_unreadable_paths_say_why(tmp_path):
    with pytest.raises(PipelineError, match="file name too long; fix"):
        fsio.read_bounded(tmp_path / ("x" * 300), 100, "fix")
    with pytest.raises(PipelineError, match="a path cannot contain a NUL byte; fix"):
        fsio.read_bounded("a\0b", 100, "fix")


def test_a_temporary_file_name_with_an_impossible_pid_is_left_alone(tmp_path):
    odd = tmp_path / f".a.json.{10**25}.tmp"
    odd.write_text("not ours")
    fsio._swept.discard(tmp_path)
    with fsio.atomic(tmp_path / "b.json") as f:
        f.write("{}")
    assert (tmp_path / "b.json").read_text() == "{}"


def test_outputs_are_synced_to_disk_before_and_after_their_rename(tmp_path, monkeypatch):
    from bigram import artifacts

    synced = []
    real = os.fsync
    monkeypatch.setattr(
        os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real(fd)
    )
    monkeypatch.chdir(tmp_path)
    with fsio.stage_outputs():
        artifacts.write_text("out/a.txt", "a")
        artifacts.write_text("out/b.txt", "b")
        assert not (tmp_path / "out/a.txt").exists()
    files = [p for p in synced if p.endswith(".tmp")]
    assert len(files) == 2  # each file's content, under its temporary name
    assert synced[-1] == str(tmp_path / "out")  # then the directory, once, after the renames
    assert (tmp_path / "out/a.txt").read_text() == "a"
