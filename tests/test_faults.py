"""Faults around a stage rather than in its input: a kill or Ctrl-C mid-run, two runs at
once, odd files where the outputs go, many checkpoints. A stage's outputs change together
or not at all, and each fault ends in one line or in a complete run.

The tests that need what only a process shows (a signal, two processes, the exit of a
real interpreter) start one; the others run the stage in this process (conftest.stage)."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import bigram, dvc, env, error_line, read_json, set_params, snapshot, stage

NAMES = "data/names.txt"


def big_names(seed, n=300_000):
    rng = np.random.default_rng(seed)
    letters = rng.integers(ord("a"), ord("z") + 1, size=(n, 7), dtype=np.uint8)
    return b"\n".join(bytes(row[: 2 + i % 6]) for i, row in enumerate(letters)) + b"\n"


# --- a real process: one line, exit 1, no traceback --------------------------------------


def test_a_failing_stage_process_ends_in_one_line_and_exit_1(project):
    """What the in-process runs stand for, in a real interpreter: `python -m stages.X`
    refusing its input prints exactly one `error:` line and exits 1."""
    (project / NAMES).write_bytes(b"")
    r = stage(project, "prepare", check=False, process=True, timeout=60)
    assert error_line(r) == (
        f"{NAMES} has no names (empty or only blank lines); put one name per line"
    )
    assert r.stdout == ""
    assert not (project / "data/prepared").exists()


def test_a_refused_checkpoint_process_ends_in_one_line_and_exit_1(trained):
    model = trained / "models/model.safetensors"
    model.write_bytes(model.read_bytes()[:300])
    expected = "models/model.safetensors is not a checkpoint of this pipeline ("
    r = stage(trained, "evaluate", check=False, process=True, timeout=60)
    assert error_line(r).startswith(expected)
    r = subprocess.run(
        [sys.executable, "-m", "bigram", "lineage", "--verify", "models/model.safetensors"],
        cwd=trained,
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert error_line(r).startswith(expected)
    # the same as in this process, which the other tests use
    assert r.stderr == bigram(trained, "lineage", "--verify", "models/model.safetensors").stderr


# --- kills and Ctrl-C -------------------------------------------------------------------------


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
    # Timed kills can all miss the writes on a busy machine: these land on one for sure,
    # killed as soon as a temporary file exists.
    for _ in range(3):
        for stale in repo.rglob(".*.tmp"):  # the last kill's, which would count at once
            if ".dvc" not in stale.parts:
                stale.unlink()
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=repo, env=env())
        deadline = time.monotonic() + 120
        while not any(repo.rglob(".*.tmp")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no temporary file within 120 s"
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        torn += any(repo.rglob(".*.tmp"))
        assert_complete(repo)
    assert torn >= 3  # the kills really did land mid-write
    dvc(repo, "repro")
    assert_complete(repo)
    assert read_json(repo / "metrics/prepare.json")["names"] == 300_000
    leftovers = [p for p in repo.rglob(".*.tmp") if ".dvc" not in p.parts]
    assert leftovers == []


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
        # As a terminal's Ctrl-C finds it: a shell starts background jobs (`nohup ... &`,
        # a CI runner's) with SIGINT ignored, and the child would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Ctrl-C once the run is writing its new checkpoints, still unnamed: mid-run
        deadline = time.monotonic() + 60
        while not list((trained / "models/checkpoints").glob(".*.tmp")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint written within 60 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.strip() == "interrupted; outputs are as they were before this run"
    assert snapshot(trained) == before
    assert not [p for p in trained.rglob("*.tmp")]


# --- two runs at once -------------------------------------------------------------------------


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
    stage(trained, "split")  # the lineage matches the files
    assert not [p for p in trained.rglob("*.tmp")]


# --- what is where the outputs go -----------------------------------------------------------


def test_a_file_in_place_of_metrics_leaves_every_prepare_output_as_it_was(trained):
    (trained / NAMES).write_text("zoe\nmax\n")
    metrics = trained / "metrics"
    for p in metrics.iterdir():
        p.unlink()
    metrics.rmdir()
    metrics.write_text("not a directory")
    before = snapshot(trained)
    assert error_line(stage(trained, "prepare", check=False)) == (
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
    line = error_line(stage(trained, "train", check=False))
    assert line.startswith("cannot write models/checkpoints/step_000000.safetensors: ")
    assert snapshot(trained) == before


def test_a_shorter_rerun_leaves_no_stale_checkpoints(trained):
    set_params(trained, train__steps=120)
    stage(trained, "train")
    steps = sorted(p.name for p in (trained / "models/checkpoints").iterdir())
    assert steps == [f"step_{s:06d}.safetensors" for s in (0, 50, 100, 120)]


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


@pytest.mark.parametrize(
    "steps",
    [
        200,  # a checkpoint at every step of the default run: 201 files
        # 10,000 checkpoints, the most there may be (test_bad_params.py: 20,001 are refused)
        pytest.param(9_999, marks=pytest.mark.slow),
    ],
)
def test_checkpoint_every_step_within_the_limit_completes(trained, steps):
    # Its time is the bench's business; here, that it finishes (the timeout is a hang guard:
    # every write used to scan the whole checkpoints directory) with every checkpoint.
    set_params(trained, train__steps=steps, train__checkpoint_every=1)
    stage(trained, "train", timeout=300)
    assert len(os.listdir(trained / "models/checkpoints")) == steps + 1
