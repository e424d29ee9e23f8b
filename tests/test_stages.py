"""What every stage module promises, whatever it computes: no arguments, a --help that
says what it reads and writes, no heavy import on the experiment path, and following
model.context."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from tests.conftest import ROOT, env, read_json, set_params, stage

STAGES = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


@pytest.mark.parametrize("name", STAGES)
def test_help_says_what_the_stage_reads_and_writes_and_touches_nothing(project, name):
    r = stage(project, name, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: python -m stages.{name} [-h]\n")
    assert "Reads" in r.stdout and "Writes" in r.stdout
    assert sorted(p.name for p in project.iterdir()) == sorted(
        p.name for p in project.iterdir() if p.name not in ("models", "metrics", "plots")
    )
    assert not (project / "metrics").exists() and not (project / "data/prepared").exists()


@pytest.mark.parametrize("name", STAGES)
def test_an_argument_is_refused_before_any_work(project, name):
    r = stage(project, name, "--steps", "5", check=False)
    assert r.returncode == 2
    assert "unrecognized arguments: --steps 5" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (project / "data/prepared").exists()


def test_help_and_a_refused_argument_in_a_real_process(project):
    """What the in-process runs above stand for, in a real `python -m` interpreter."""
    r = stage(project, "train", "--help", process=True)
    assert r.returncode == 0 and r.stdout == stage(project, "train", "--help").stdout
    r = stage(project, "train", "--steps", "5", check=False, process=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr == stage(project, "train", "--steps", "5", check=False).stderr
    assert not (project / "models").exists()


def test_a_stage_runs_as_a_script_too(project):
    r = subprocess.run(
        [sys.executable, "stages/prepare.py"],
        cwd=project,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert (project / "data/prepared/vocab.json").is_file()


# Runs the stages after split in turn in one fresh interpreter, printing after each the
# heavy modules imported so far: the first stage to import one is the line it shows on.
IMPORTS = """
import runpy, sys
for name in NAMES:
    sys.argv = ["stage"]
    runpy.run_module("stages." + name, run_name="__main__")
    heavy = sorted(m for m in ("torch", "matplotlib", "pandas") if m in sys.modules)
    print("heavy:" + name + ":" + ",".join(heavy))
"""


def test_nothing_after_split_imports_torch_or_matplotlib(project):
    stage(project, "prepare")
    stage(project, "split")
    after_split = [name for name in STAGES if name not in ("prepare", "split")]
    r = subprocess.run(
        [sys.executable, "-c", IMPORTS.replace("NAMES", repr(after_split))],
        cwd=project,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    heavy = dict(
        line.removeprefix("heavy:").split(":") for line in r.stdout.splitlines() if "heavy:" in line
    )
    assert heavy == {name: "" for name in after_split}


def test_every_stage_follows_model_context(trained_project):
    """The toy list as a trigram: the split is the bigram's, W is 441×21, and evaluate,
    compare and sample work on contexts of two symbols."""
    d = trained_project
    split_before = (d / "data/split/split.npy").read_bytes()
    set_params(d, model__context=2)
    for name in STAGES[1:]:
        stage(d, name)
    assert (d / "data/split/split.npy").read_bytes() == split_before  # same permutation
    vocab = read_json(d / "data/prepared/vocab.json")
    V = len(vocab)
    counts = np.load(d / "data/split/counts.npy")
    assert counts.shape == (3, V * V, V)
    sizes = read_json(d / "metrics/split.json")["pairs_per_split"]
    assert counts.sum(axis=(1, 2)).tolist() == [sizes[s] for s in ("train", "dev", "test")]
    W = load_file(str(d / "models/model.safetensors"))["W"]
    assert W.shape == (V * V, V) == (441, 21)
    ev = read_json(d / "metrics/evaluate.json")
    cmp = read_json(d / "metrics/compare.json")
    assert cmp["neural"] == {split: v["nll"] for split, v in ev.items()}
    table = list(csv.DictReader((d / "plots/bigrams.csv").open()))
    assert table[0]["prev"] == ".." and all(len(row["prev"]) == 2 for row in table)
    samples = (d / "data/samples.txt").read_text().splitlines()
    assert len(samples) == 20 and all(set(name) <= set(vocab[1:]) for name in samples)


def test_a_context_too_large_for_the_vocabulary_is_refused_by_split(trained_project):
    d = trained_project
    before = {p: p.read_bytes() for p in (d / "data/split").iterdir()}
    set_params(d, model__context=5)
    r = stage(d, "split", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        "error: params.yaml: model.context = 5 with a vocabulary of 21 symbols needs a "
        "21^5×21 W (8.58e+07 weights, 8 bytes each as float64); the limit is 16,777,216 "
        "weights: use model.context <= 4"
    )
    assert {p: p.read_bytes() for p in (d / "data/split").iterdir()} == before
