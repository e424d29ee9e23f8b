"""Bad input never corrupts or crashes: every case ends in one exact line naming the
file or key and the fix, a non-zero exit, no traceback and no half-written output."""

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigram.console import PipelineError
from bigram.names import encode, parse_names
from tests.conftest import dvc, env, read_json, set_params, stage

NAMES = "data/names.txt"


def error_line(result):
    """The single stderr line of a failed stage, without its 'error: ' prefix."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0][len("error: ") :]


# --- names files ---------------------------------------------------------------

ACCEPTED = {  # content -> (names, pairs, vocabulary)
    "crlf": (b"emma\r\nava\r\n", 2, 9, ".aemv"),
    "cr only": (b"emma\rava", 2, 9, ".aemv"),
    "utf-8 bom": (b"\xef\xbb\xbfemma\nava\n", 2, 9, ".aemv"),
    "surrounding whitespace": (b"  emma  \n\tava \n", 2, 9, ".aemv"),
    "blank lines": (b"\n\nemma\n\n \nava\n\n", 2, 9, ".aemv"),
    "one character": (b"a\n", 1, 2, ".a"),
    "10,000 characters": (b"ab" * 5000, 1, 10001, ".ab"),
    "duplicates kept": (b"ava\nava\n", 2, 8, ".av"),
    "uppercase and non-ascii": ("Zoë\nzoe\n".encode(), 2, 8, ".Zeozë"),
    "inner space": (b"mary ann\n", 1, 9, ". amnry"),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_accepted_names_files(project, case):
    content, names, pairs, vocab = ACCEPTED[case]
    (project / NAMES).write_bytes(content)
    stage(project, "prepare")
    assert read_json(project / "metrics/prepare.json") == {
        "names": names,
        "pairs": pairs,
        "vocab_size": len(vocab),
    }
    assert read_json(project / "data/prepared/vocab.json") == list(vocab)


HINT = "point data.names in params.yaml at a names file (one name per line)"
REJECTED = {  # content -> the exact message
    "empty": (b"", f"{NAMES} has no names (empty or only blank lines); put one name per line"),
    "only blank lines": (
        b"\n  \r\n\t\n",
        f"{NAMES} has no names (empty or only blank lines); put one name per line",
    ),
    "tab inside a name": (
        b"emma\nan\tna\n",
        f"{NAMES} line 2: control character U+0009 inside a "
        "name; put one plain name per line (is this a TSV or "
        "binary file?)",
    ),
    "not utf-8": (
        b"emma\nzo\xeb\n",
        f"{NAMES} line 2: byte 0xeb is not UTF-8; save the file as UTF-8",
    ),
    "boundary inside a name": (
        b"emma\nj.r.\n",
        f"{NAMES} line 2: 'j.r.' contains '.', the name boundary symbol; remove it from the name",
    ),
    "binary (png)": (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        f"{NAMES} line 1: byte 0x89 is not UTF-8; save the file as UTF-8",
    ),
    "binary (valid utf-8)": (
        b"ab\x00\x01\x02cd",
        f"{NAMES} line 1: control character U+0000 inside "
        "a name; put one plain name per line (is this a "
        "TSV or binary file?)",
    ),
}


@pytest.mark.parametrize("case", REJECTED)
def test_rejected_names_files(project, case):
    content, message = REJECTED[case]
    (project / NAMES).write_bytes(content)
    assert error_line(stage(project, "prepare", check=False)) == message
    assert not (project / "data/prepared").exists()
    assert not (project / "metrics").exists()


def test_names_file_that_is_missing_or_a_directory(project):
    set_params(project, data__names="nope.txt")
    assert error_line(stage(project, "prepare", check=False)) == f"nope.txt: no such file; {HINT}"
    set_params(project, data__names="data")
    assert error_line(stage(project, "prepare", check=False)) == f"data is a directory; {HINT}"
    assert not (project / "data/prepared").exists()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.text(max_size=12), max_size=20).map(lambda lines: "\n".join(lines).encode()),
    )
)
def test_prepare_either_succeeds_with_invariants_or_fails_as_documented(data):
    try:
        names = parse_names(data, "f")
    except PipelineError as e:
        assert len(str(e).splitlines()) == 1
        assert str(e).startswith(("f has no names", "f line "))
        return
    vocab, pairs = encode(names)
    assert vocab[0] == "." and set(vocab) == set("".join(names)) | {"."}
    assert len(set(vocab)) == len(vocab)
    assert pairs.shape == (2, sum(len(n) + 1 for n in names))
    assert int(pairs.max()) < len(vocab)
    decoded = "".join(vocab[i] for i in pairs[0]) + "."
    assert decoded == "." + ".".join(names) + "."


# --- params --------------------------------------------------------------------


def test_a_bad_param_stops_the_first_stage_before_any_work(project):
    set_params(project, train__learning_rate=1)
    assert error_line(stage(project, "prepare", check=False)) == (
        "params.yaml: unknown key train.learning_rate; the train keys are seed, lr, reg, steps, "
        "checkpoint_every"
    )
    assert not (project / "data/prepared").exists()


def test_fractions_that_leave_a_split_empty(project):
    stage(project, "prepare")
    set_params(project, split__dev=0.005)  # int(0.005 * 130 pairs) = 0
    assert error_line(stage(project, "split", check=False)) == (
        "params.yaml: split.train = 0.8, split.dev = 0.005 leave the dev split empty for "
        "130 pairs; use other fractions or a larger names file"
    )
    set_params(project, split__dev=0.1, split__train=0.85, split__unit="names")  # 20 names: 17+2+1
    stage(project, "split")
    set_params(project, split__dev=0.04)  # int(0.04 * 20 names) = 0
    assert error_line(stage(project, "split", check=False)) == (
        "params.yaml: split.train = 0.85, split.dev = 0.04 leave the dev split empty for 20 names; "
        "use other fractions or a larger names file"
    )


# --- checkpoints and artifacts ---------------------------------------------------


@pytest.fixture
def trained(trained_project):
    return trained_project


def test_truncated_checkpoint(trained):
    model = trained / "models/model.safetensors"
    model.write_bytes(model.read_bytes()[:300])
    line = error_line(stage(trained, "evaluate", check=False))
    assert line.startswith("models/model.safetensors is not a checkpoint of this pipeline (")
    assert line.endswith("); run `dvc repro -f train` to rebuild it")


def test_checkpoint_trained_on_another_vocabulary(trained, tmp_path):
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

    (trained / "models/model.safetensors").write_bytes(pickle.dumps(Payload()))
    line = error_line(stage(trained, "evaluate", check=False))
    assert line.startswith("models/model.safetensors is not a checkpoint of this pipeline")
    assert not marker.exists()


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
            "characters, '.' first); run `dvc repro -f prepare` to rebuild it",
        ),
        (
            lambda v: v[:-1],
            "data/prepared/pairs.npy does not match data/prepared/vocab.json; "
            "run `dvc repro -f prepare` to rebuild both",
        ),
        (None, "data/prepared/vocab.json is missing or unreadable; run `dvc repro` to rebuild it"),
    ],
)
def test_vocabulary_edited_by_hand(trained, edit, message):
    path = trained / "data/prepared/vocab.json"
    if edit is None:
        path.write_text('["." "a"')
    else:
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    assert error_line(stage(trained, "split", check=False)) == message


def test_divergence_stops_with_the_step_and_writes_no_checkpoint(project):
    stage(project, "prepare")
    stage(project, "split")
    set_params(project, train__lr=1e6)
    line = error_line(stage(project, "train", check=False))
    assert line.startswith("train diverged at step ")
    assert line.endswith("; lower train.lr (now 1000000.0) in params.yaml")
    assert not (project / "models").exists()


# --- faults ----------------------------------------------------------------------


def big_names(seed, n=300_000):
    rng = np.random.default_rng(seed)
    letters = rng.integers(ord("a"), ord("z") + 1, size=(n, 7), dtype=np.uint8)
    return b"\n".join(bytes(row[: 2 + i % 6]) for i, row in enumerate(letters)) + b"\n"


def assert_complete(project):
    """Every prepare output present is whole: it parses and matches its own header."""
    d = project / "data/prepared"
    if (d / "vocab.json").exists():
        assert json.loads((d / "vocab.json").read_text())[0] == "."
    if (d / "pairs.npy").exists():
        pairs = np.load(d / "pairs.npy", allow_pickle=False)
        assert pairs.shape[0] == 2 and pairs.shape[1] > 0
    for f in (d / "lineage.json", project / "metrics/prepare.json"):
        if f.exists():
            json.loads(f.read_text())


# Runs a stage with every artifact write slowed to 64 KiB per millisecond, so that
# a SIGKILL at a random moment lands mid-write, not only between writes.
SLOW_WRITES = """
import builtins, runpy, sys, time
import bigram.artifacts as artifacts

class Slow:
    def __init__(self, f): self.f = f
    def __enter__(self): return self
    def __exit__(self, *exc): return self.f.__exit__(*exc)
    def __getattr__(self, name): return getattr(self.f, name)
    def write(self, data):
        for i in range(0, len(data), 65536):
            self.f.write(data[i:i + 65536]); self.f.flush(); time.sleep(0.001)
        return len(data)

artifacts.open = lambda *a, **k: Slow(builtins.open(*a, **k))
sys.argv = ["stage"]
runpy.run_module("stages." + STAGE, run_name="__main__")
"""


@pytest.mark.slow
def test_killed_mid_write_leaves_whole_files_and_repro_completes(repo):
    (repo / NAMES).write_bytes(big_names(0))
    stage(repo, "prepare")
    (repo / NAMES).write_bytes(big_names(1))
    script = SLOW_WRITES.replace("STAGE", repr("prepare"))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", script], cwd=repo, env=env(), check=True, capture_output=True
    )
    duration = time.perf_counter() - start
    torn = 0
    for delay in random.Random(0).sample([duration * k / 40 for k in range(1, 40)], 12):
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=repo,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        torn += any(repo.rglob(".*.tmp"))  # killed while a temporary file was being written
        assert_complete(repo)
    assert torn >= 3  # the kills really did land mid-write
    dvc(repo, "repro")
    assert_complete(repo)
    assert read_json(repo / "metrics/prepare.json")["names"] == 300_000
    leftovers = [p for p in repo.rglob(".*.tmp") if ".dvc" not in p.parts]
    assert leftovers == []


def test_a_shorter_rerun_leaves_no_stale_checkpoints(trained):
    set_params(trained, train__steps=120)
    stage(trained, "train")
    steps = sorted(p.name for p in (trained / "models/checkpoints").iterdir())
    assert steps == [f"step_{s:06d}.safetensors" for s in (0, 50, 100, 120)]


def test_a_loss_that_explodes_without_overflowing_is_divergence_too(project):
    stage(project, "prepare")
    stage(project, "split")
    set_params(project, train__lr=40000)  # finite, but the loss climbs into the thousands
    line = error_line(stage(project, "train", check=False))
    assert line.startswith("train diverged at step ") and "lower train.lr (now 40000)" in line
    assert not (project / "models").exists()


def test_other_files_among_the_checkpoints_are_left_alone(trained):
    extra = trained / "models/checkpoints/step_best.safetensors"
    extra.write_bytes((trained / "models/model.safetensors").read_bytes())
    stage(trained, "train")
    stage(trained, "evaluate")
    assert extra.exists()
    steps = [
        r.split(",")[0] for r in (trained / "plots/eval_steps.csv").read_text().splitlines()[1:]
    ]
    assert steps == ["0", "50", "100", "150", "200"]


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
    for args in (["evaluate"], ["lineage", str(foreign)], ["lineage", "--verify", str(foreign)]):
        if args == ["evaluate"]:
            (trained / "models/model.safetensors").write_bytes(foreign.read_bytes())
        command = ["bigram", *args] if args[0] == "lineage" else [f"stages.{args[0]}"]
        r = subprocess.run(
            [sys.executable, "-m", *command], cwd=trained, env=env(), capture_output=True, text=True
        )
        assert "is not a checkpoint of this pipeline (its metadata lacks the lineage" in error_line(
            r
        )


@pytest.mark.parametrize("content", ['[{"stage": "x"}]', "[1]", '{"a": 1}'])
def test_a_lineage_file_edited_by_hand(trained, content):
    (trained / "data/prepared/lineage.json").write_text(content)
    assert error_line(stage(trained, "split", check=False)) == (
        "data/prepared/lineage.json is not a lineage record; run `dvc repro` to rebuild it"
    )
