"""`bigram check`: every stage of dvc.lock re-run in a scratch copy, each output compared."""

import json
import re
import sys

import numpy as np
import pytest

from bigram import artifacts
from tests.conftest import dvc, sh, snapshot

pytestmark = pytest.mark.slow


def check(repo, *args):
    return sh([sys.executable, "-m", "bigram", "check", *args], repo, check=False)


def test_a_fresh_run_is_identical_output_by_output_and_nothing_is_written(trained_repo):
    before = snapshot(trained_repo)
    r = check(trained_repo, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(r.stdout)["outputs"]
    lock = dvc(trained_repo, "status", "--json").stdout  # DVC agrees nothing is stale
    assert json.loads(lock) == {}
    outs = yaml_outs(trained_repo)
    assert {(row["stage"], row["path"]) for row in rows} == outs  # every output, once
    assert {row["status"] for row in rows} == {"identical"}
    assert snapshot(trained_repo) == before


def yaml_outs(repo):
    import yaml

    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {(s, o["path"]) for s, e in lock.items() for o in e["outs"]}


def test_a_forged_count_recorded_in_dvc_lock_is_named(trained_repo):
    counts = np.load(trained_repo / artifacts.COUNTS).copy()
    counts[2, 0, 1] += 7  # test split, context '.', next 'a'
    (trained_repo / artifacts.COUNTS).write_bytes(artifacts.npy_bytes(counts))
    dvc(trained_repo, "commit", "-f", "-q")
    r = check(trained_repo)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(
        r"(?m)^split +data/split/counts.npy +differs: 1 count cells differ; first \(context "
        rf"'.', next 'a', split test\): recorded {counts[2, 0, 1]}, re-derived "
        rf"{counts[2, 0, 1] - 7}$",
        r.stdout,
    )
    assert re.search(r"(?m)^prepare +data/prepared/vocab.json +identical$", r.stdout)


def test_a_param_not_yet_reproduced_makes_the_lock_stale(trained_repo):
    text = (trained_repo / "params.yaml").read_text().replace("lr: 50", "lr: 10")
    (trained_repo / "params.yaml").write_text(text)
    r = check(trained_repo)
    assert r.returncode == 1
    assert re.search(
        r"(?m)^train +params.yaml train.lr +differs: dvc.lock records 50, params.yaml has 10; "
        r"run `dvc repro`$",
        r.stdout,
    )


def test_a_revision_is_checked_from_git_and_the_cache_not_the_workspace(trained_repo):
    (trained_repo / "data/names.txt").write_text("zelda\n")  # the workspace's: not used
    (trained_repo / "bigram/training.py").write_text("raise SystemExit(3)\n")
    r = check(trained_repo, "--rev", "HEAD")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 differs, 0 not checked" in r.stdout
    r = check(trained_repo, "--rev", "HEAD~1")  # before the first run: no dvc.lock
    assert r.returncode == 1
    assert r.stderr.strip() == "error: dvc.lock: missing or not a DVC lock file at HEAD~1"
