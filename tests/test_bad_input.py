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
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigram import artifacts
from bigram.console import PipelineError
from bigram.names import encode, parse_names
from tests.conftest import dvc, env, read_json, set_params, snapshot, stage

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
    assert error_line(stage(project, "prepare", check=False)) == (
        "nope.txt: no such file; if it is your names list, put it inside the project and track "
        "it with `dvc add nope.txt` (queued experiments and clones see only what git or DVC "
        "tracks), or point data.names in params.yaml at the right file"
    )
    set_params(project, data__names="data")
    assert (
        error_line(stage(project, "prepare", check=False))
        == f"data is a directory, not a file; {HINT}"
    )
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
    assert line.endswith("); run `dvc repro` to rebuild it")


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
import bigram.fsio as fsio

class Slow:
    def __init__(self, f): self.f = f
    def __enter__(self): return self
    def __exit__(self, *exc): return self.f.__exit__(*exc)
    def __getattr__(self, name): return getattr(self.f, name)
    def write(self, data):
        for i in range(0, len(data), 65536):
            self.f.write(data[i:i + 65536]); self.f.flush(); time.sleep(0.001)
        return len(data)

fsio.open = lambda *a, **k: Slow(builtins.open(*a, **k))
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


@pytest.mark.parametrize(
    "content, problem",
    [
        ('[{"stage": "x"}]', "a record is not {stage, params, inputs, outputs, sha256, code}"),
        ("[1]", "a record is not {stage, params, inputs, outputs, sha256, code}"),
        ('{"a": 1}', "not a list of the prepare records"),
        ("[" * 100_000 + "]" * 100_000, None),  # nested 100,000 deep: not a RecursionError
    ],
)
def test_a_lineage_file_edited_by_hand(trained, content, problem):
    (trained / "data/prepared/lineage.json").write_text(content)
    expected = (
        f"data/prepared/lineage.json is not a lineage record ({problem}); "
        if problem
        else "data/prepared/lineage.json is not valid JSON; "
    )
    assert error_line(stage(trained, "split", check=False)) == expected + (
        "run `dvc repro` to rebuild it"
    )


# --- round two: hangs and runaway reads --------------------------------------------


def run_stage(d, name, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", f"stages.{name}"],
        cwd=d,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_names_file_that_is_a_fifo_is_refused_without_hanging(project):
    os.mkfifo(project / "names.fifo")
    set_params(project, data__names="names.fifo")
    assert error_line(run_stage(project, "prepare", timeout=30)) == (
        f"names.fifo is a FIFO (named pipe), not a file; {HINT}"
    )


def test_names_file_that_is_dev_zero_is_refused_without_reading(project):
    os.symlink("/dev/zero", project / "data/zero.txt")
    set_params(project, data__names="data/zero.txt")
    assert error_line(run_stage(project, "prepare", timeout=30)) == (
        "data/zero.txt is a symbolic link to a file outside the project, which the pipeline "
        "does not read: copy the file into data/ and track it with `dvc add` (README: Your own "
        "names list)"
    )


@pytest.mark.parametrize("path", ["../shared/data/names.txt", "/tmp/names.txt", "data/../.."])
def test_names_file_outside_the_project_is_refused_with_what_to_do(project, path):
    set_params(project, data__names=path)
    assert error_line(run_stage(project, "prepare")) == (
        f"params.yaml: data.names = {path!r} is outside the project: DVC cannot cache it and "
        "queued experiments, which run in a copy of the project, cannot see it; copy it into "
        "data/ and track it with `dvc add` (README: Your own names list)"
    )


def test_names_file_over_the_size_limit_is_refused_unread(project):
    with open(project / "huge.txt", "wb") as f:
        f.truncate(49 * 2**20)  # sparse: 49 MiB that cost nothing to make
    set_params(project, data__names="huge.txt")
    assert error_line(run_stage(project, "prepare")) == (
        f"huge.txt is 51,380,224 bytes, over the limit of 50,331,648; {HINT}"
    )


def test_params_with_a_billion_laughs_is_refused_at_once(project):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    text = (project / "params.yaml").read_text() + "\n".join(lines) + "\n"
    (project / "params.yaml").write_text(text)
    assert error_line(run_stage(project, "prepare", timeout=30)) == (
        "params.yaml uses YAML anchors and aliases (&name, *name); write each value out"
    )


def test_params_over_the_size_limit_is_refused_unread(project):
    with open(project / "params.yaml", "ab") as f:
        f.write(b"#" * (50 * 2**20))
    r = run_stage(project, "prepare")
    assert error_line(r).startswith("params.yaml is 52,4")
    assert error_line(r).endswith(
        "bytes, over the limit of 65,536; run from the project root, where params.yaml is"
    )


def test_checkpoint_every_step_of_a_long_run_is_refused_up_front(trained):
    set_params(trained, train__steps=20_000, train__checkpoint_every=1)
    before = snapshot(trained)
    assert error_line(run_stage(trained, "train")) == (
        "params.yaml: train.steps = 20,000 with train.checkpoint_every = 1 writes 20,001 "
        "checkpoints; the limit is 10,000: raise train.checkpoint_every"
    )
    assert snapshot(trained) == before


def test_checkpoint_every_step_within_the_limit_completes(trained):
    # Its time is the bench's business; here, that it finishes (the timeout is a hang guard:
    # every write used to scan the whole checkpoints directory) with every checkpoint.
    set_params(trained, train__steps=5_000, train__checkpoint_every=1)
    assert run_stage(trained, "train", timeout=300).returncode == 0
    assert len(os.listdir(trained / "models/checkpoints")) == 5_001


# --- round two: one line instead of a traceback ------------------------------------


def test_names_path_with_a_nul_byte(project):
    set_params(project, data__names="data/na\0mes.txt")
    r = run_stage(project, "prepare")
    assert "Traceback" not in r.stderr and r.returncode == 1
    assert "data.names" in r.stderr or "NUL" in r.stderr


def test_params_yaml_that_is_a_directory(project):
    (project / "params.yaml").unlink()
    (project / "params.yaml").mkdir()
    assert error_line(run_stage(project, "prepare")) == (
        "params.yaml is a directory, not a file; run from the project root, where params.yaml is"
    )


def test_params_yaml_that_is_empty(project):
    (project / "params.yaml").write_text("# nothing here\n")
    assert error_line(run_stage(project, "prepare")) == (
        "params.yaml is empty; restore it (`git checkout params.yaml`) or write its sections "
        "(data, split, model, train, compare, sample)"
    )


def test_params_yaml_in_utf16_names_the_encoding(project):
    text = (project / "params.yaml").read_text()
    (project / "params.yaml").write_bytes(text.encode("utf-16"))
    assert error_line(run_stage(project, "prepare")) == (
        "params.yaml is UTF-16 or UTF-32 text (or binary); save it as UTF-8"
    )


def test_names_file_in_a_symlink_loop_says_so(project):
    os.symlink("loop.txt", project / "loop.txt")
    set_params(project, data__names="loop.txt")
    assert error_line(run_stage(project, "prepare")) == (
        f"loop.txt: too many levels of symbolic links (a symlink loop?); {HINT}"
    )


def test_names_file_name_too_long_says_so(project):
    set_params(project, data__names="n" * 300 + ".txt")
    assert error_line(run_stage(project, "prepare")).endswith(f": file name too long; {HINT}")


def test_a_lineage_file_of_100_mb_is_refused_unread(trained):
    with open(trained / "data/split/lineage.json", "wb") as f:
        f.truncate(100 * 10**6)
    assert error_line(run_stage(trained, "train")) == (
        "data/split/lineage.json is 100,000,000 bytes, over the limit of 4,194,304; "
        "run `dvc repro` to rebuild it"
    )


def test_forged_counts_that_overflow_are_refused_in_one_line(trained):
    counts = np.load(trained / "data/split/counts.npy")
    counts[:] = 2**62
    np.save(trained / "data/split/counts.npy", counts)
    for name in ("evaluate", "compare"):
        assert error_line(run_stage(trained, name)) == (
            "data/split/counts.npy counts more than 2**53 pairs; run `dvc repro` to rebuild it"
        )


def test_a_bigram_model_with_trigram_counts_is_one_line_naming_the_fix(trained):
    # split rerun by hand with a new context, train not: the model is a stage behind
    set_params(trained, model__context=2)
    assert run_stage(trained, "split").returncode == 0
    for name in ("evaluate", "compare"):
        assert error_line(run_stage(trained, name)) == (
            "data/split/counts.npy holds int64 (3, 441, 21), not the int64 (3, 21, 21) counts "
            "that data/prepared/vocab.json and the model's context need; run `dvc repro` to "
            "rebuild what is stale"
        )


def test_ctrl_c_during_a_stage_is_one_line_and_keeps_the_outputs(trained):
    set_params(trained, train__steps=1_500_000, train__checkpoint_every=1_000)
    before = snapshot(trained)
    proc = subprocess.Popen(
        [sys.executable, "-m", "stages.train"],
        cwd=trained,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip() == "interrupted; outputs are as they were before this run"
    assert snapshot(trained) == before
    assert not [p for p in trained.rglob("*.tmp")]


# --- round two: a stage's outputs change together or not at all --------------------


def test_a_file_in_place_of_metrics_leaves_every_prepare_output_as_it_was(trained):
    (trained / NAMES).write_text("zoe\nmax\n")
    metrics = trained / "metrics"
    for p in metrics.iterdir():
        p.unlink()
    metrics.rmdir()
    metrics.write_text("not a directory")
    before = snapshot(trained)
    assert error_line(run_stage(trained, "prepare")) == (
        "cannot write metrics/prepare.json: metrics is a file where a directory should be; "
        "move it away (the previous outputs are kept)"
    )
    assert snapshot(trained) == before  # vocab.json and pairs.npy were not replaced


def test_a_file_in_place_of_the_checkpoints_leaves_every_train_output_as_it_was(trained):
    import shutil

    shutil.rmtree(trained / "models/checkpoints")
    (trained / "models/checkpoints").write_text("not a directory")
    before = snapshot(trained)
    set_params(trained, train__lr=10)
    line = error_line(run_stage(trained, "train"))
    assert line.startswith("cannot write models/checkpoints/step_000000.safetensors: ")
    assert snapshot(trained) == before


def test_two_prepares_at_once_both_succeed_with_whole_outputs(trained):
    (trained / NAMES).write_bytes(big_names(3, 200_000))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "stages.prepare"],
            cwd=trained,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert read_json(trained / "metrics/prepare.json")["names"] == 200_000
    assert run_stage(trained, "split").returncode == 0  # the lineage matches the files
    assert not [p for p in trained.rglob("*.tmp")]


# --- round two: params are read as DVC reads them ------------------------------------


TRICKY = [
    "split:\n  seed: 010\n",
    "split:\n  seed: 0o10\n",
    "train:\n  reg: 1e-3\n",
    "train:\n  lr: 5E+1\n",
    "sample:\n  count: 1_000\n",
    "compare:\n  fit: yes\n",
    "split:\n  unit: on\n",
    "train:\n  lr: .5\n",
    "train:\n  lr: 0x10\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_the_stages_read_params_as_dvc_does(text):
    from dvc.utils.serialize import parse_yaml as dvc_parse

    from bigram.params import parse_yaml

    assert parse_yaml(text.encode(), "params.yaml") == dvc_parse(text, "params.yaml")


def test_a_seed_written_010_trains_with_the_seed_dvc_shows(trained):
    text = (trained / "params.yaml").read_text().replace("seed: 42", "seed: 010", 2)
    (trained / "params.yaml").write_text(text)
    assert run_stage(trained, "split").returncode == 0
    assert read_json(trained / "data/split/lineage.json")[1]["params"]["split"]["seed"] == 10


def test_duplicate_keys_are_refused_as_dvc_refuses_them(project):
    from dvc.utils.serialize import YAMLError
    from dvc.utils.serialize import parse_yaml as dvc_parse

    text = (project / "params.yaml").read_text().replace("  lr: 50", "  lr: 50\n  lr: 10")
    with pytest.raises(YAMLError):
        dvc_parse(text, "params.yaml")
    (project / "params.yaml").write_text(text)
    line = error_line(run_stage(project, "prepare"))
    assert line.startswith("params.yaml line ")
    assert line.endswith(": a key appears twice in one mapping, which DVC refuses; keep one")


# --- round two: large vocabularies ---------------------------------------------------


def test_a_vocabulary_too_large_for_the_memory_budget_is_refused_up_front(project):
    symbols = [chr(0x4E00 + i) for i in range(20_000)]
    names = ["".join(symbols[i : i + 5]) for i in range(0, 20_000, 5)]
    (project / NAMES).write_text("\n".join(names) + "\n")
    assert error_line(run_stage(project, "prepare")) == (
        "data/names.txt has 20,000 distinct symbols: a vocabulary of 20,001 needs 3.0 GiB per "
        "V×V matrix; the limit is 4,096 symbols ('.' included)"
    )
    assert not (project / "data/prepared").exists()


# --- round two: auditing an untrusted checkpoint is safe ------------------------------


def forge(trained, edit, name="forged.safetensors"):
    """A copy of the model whose metadata `edit` has changed, written without checks."""
    from bigram import checkpoint

    W, meta = checkpoint.parse((trained / MODEL).read_bytes(), MODEL)
    edit(meta)
    (trained / name).write_bytes(checkpoint.to_bytes(W, meta))
    return name


def bigram(trained, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "bigram", "lineage", *args],
        cwd=trained,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


MODEL = "models/model.safetensors"


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
        line = error_line(bigram(trained, *args))
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
    r = bigram(trained, "--verify", name, timeout=30)
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
    line = error_line(bigram(trained, "--verify", name, timeout=30))
    assert line.startswith(f"{name} is not a checkpoint of this pipeline (lineage: ")
    assert "outside the project" in line


def test_a_checkpoint_whose_train_record_omits_the_counts_is_refused(trained):
    name = forge(trained, lambda m: m["lineage"][2].update(inputs={}, sha256={}))
    line = error_line(bigram(trained, "--verify", name))
    assert "the train record does not name the files that stage reads and writes" in line


def test_a_lineage_record_whose_stage_is_a_list_is_one_line(trained):
    (trained / "data/prepared/lineage.json").write_text(
        '[{"stage": ["prepare"], "params": {}, "inputs": {}, "outputs": {}, "sha256": {}, '
        '"code": {}}]'
    )
    assert error_line(run_stage(trained, "split")) == (
        "data/prepared/lineage.json is not a lineage record (unknown stage \"['prepare']\"); "
        "run `dvc repro` to rebuild it"
    )


def test_an_npy_header_claiming_terabytes_is_refused_unread(trained):
    path = trained / "data/split/counts.npy"
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    forged = data[:header_end].replace(b"(3, 21, 21)", b"(3, 999999, 999999)")
    with pytest.raises(PipelineError, match=r"^data/split/counts.npy is not a valid .npy array"):
        artifacts.load_npy(forged + data[header_end:], "data/split/counts.npy")
    path.write_bytes(forged + data[header_end:])  # the stage reads it bounded, then refuses it
    assert error_line(run_stage(trained, "train")) == (
        "data/split/counts.npy is not the file recorded in data/split/lineage.json; "
        "run `dvc repro` to rebuild both"
    )


def test_a_schema_1_commit_without_its_dirtiness_is_refused():
    from bigram import checkpoint

    old = Path(__file__).parent / "data/checkpoint-schema1.safetensors"
    W, meta = checkpoint.read(str(old))
    meta["code"].update(commit="a" * 40, dirty=None)
    with pytest.raises(PipelineError, match=r"its code record is not \{commit, dirty\}"):
        checkpoint.parse(checkpoint.to_bytes(W, meta), "old.safetensors")
