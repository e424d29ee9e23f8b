"""Experiments people compare: plots, a queued sweep, best-on-dev selection, a shared cache."""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import dvc, env, read_json, sh
from tests.render import assert_heatmaps_drawn, assert_line_charts_drawn

CHROMIUM = shutil.which("chromium")
LINES = {"train_loss": "line", "train_reg": "line", "eval_nll": "symbol"}
PLOTS = {*LINES, "bigram_heatmaps"}
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


@needs_chromium
@pytest.mark.slow
def test_plots_show_draws_heatmaps_and_charts_offline_in_headless_chromium(trained_repo):
    repo = trained_repo
    dvc(repo, "plots", "show", "-o", "html")
    page = repo / "html/index.html"
    assert "<script src=" not in page.read_text()  # vega is inline (.dvc/plots.html)
    V = len(read_json(repo / "data/prepared/vocab.json"))
    report = assert_heatmaps_drawn(page, revisions=["workspace"], symbols=V)
    assert_line_charts_drawn(report, LINES)
    # A trigram's rows are its contexts (two symbols), one cell per row of its table.
    dvc(repo, "exp", "run", "-S", "model.context=2")
    dvc(repo, "plots", "show", "-o", "html")
    table = list(csv.DictReader((repo / "plots/bigrams.csv").open()))
    assert {len(row["prev"]) for row in table} == {2}
    assert_heatmaps_drawn(page, revisions=["workspace"], cells=len(table))
    # The check can fail: without vega there is nothing to find.
    page.write_text(page.read_text().replace("vegaEmbed(", "void("))
    with pytest.raises(AssertionError):
        assert_heatmaps_drawn(page)


@pytest.mark.slow
def test_plots_diff_shows_both_experiments_side_by_side(trained_repo):
    repo = trained_repo
    out = dvc(repo, "exp", "run", "-S", "train.lr=10").stdout
    name = re.search(r"Ran experiment\(s\): (\S+)", out).group(1)
    diff = json.loads(dvc(repo, "plots", "diff", "HEAD", name, "--json").stdout)
    assert diff.get("errors") in (None, [])
    assert set(diff["data"]) == PLOTS
    for plot in PLOTS:
        revisions = {rev for entry in diff["data"][plot] for rev in entry["revisions"]}
        assert revisions == {"HEAD", name}, plot
    if CHROMIUM:
        dvc(repo, "plots", "diff", "HEAD", name, "-o", "diff")
        V = len(read_json(repo / "data/prepared/vocab.json"))
        assert_heatmaps_drawn(repo / "diff/index.html", revisions=["HEAD", name], symbols=V)


@pytest.mark.slow
def test_sweep_on_the_queue_sorted_by_dev_and_selected(trained_repo):
    """The exercises' grid in small, on two workers: bigram and trigram, two
    regularisation strengths, two smoothings (pairs that share split, train, evaluate and
    sample: each of those runs once, the other of the pair takes it from the run cache)."""
    repo = trained_repo
    sweep = subprocess.Popen(
        [sys.executable, "-m", "bigram", "sweep", "-j", "2", "-S", "model.context=1,2"]
        + ["-S", "train.reg=0.001,0.1", "-S", "compare.smoothing=0.1,1"],
        cwd=repo,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert sweep.wait(timeout=600) == 0
    # Its output ends when it does: DVC's workers idle on for 10 s, and nothing of theirs
    # may hold the pipe a script (or `| tee`) reads the sweep through.
    os.set_blocking(sweep.stdout.fileno(), False)
    out = b""
    while chunk := os.read(sweep.stdout.fileno(), 65536):  # BlockingIOError: still held
        out += chunk
    sweep.stdout.close()
    assert b"8 of 8 succeeded" in out, out
    status = dvc(repo, "queue", "status").stdout
    assert status.count("Success") == 8, status
    logs = [p.read_text() for p in (repo / ".dvc/tmp/exps/run").glob("*/*.out")]
    for stage in ("train", "evaluate", "sample"):  # one run per (context, reg)
        assert sum(f"Running stage '{stage}'" in log for log in logs) == 4, stage
        assert sum(f"Stage '{stage}' is cached" in log for log in logs) == 4, stage
    assert sum("Running stage 'split'" in log for log in logs) == 1  # context 2; 1 is HEAD's

    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    head = next(r for r in shown if r["rev"] != "workspace")
    runs = {}
    for exp in head["experiments"]:
        for rev in exp["revs"]:
            p = rev["data"]["params"]["params.yaml"]["data"]
            dev = rev["data"]["metrics"]["metrics/evaluate.json"]["data"]["dev"]["nll"]
            runs[rev["name"]] = ((p["model"]["context"], p["train"]["reg"]), dev)
    assert sorted(p for p, _ in runs.values()) == sorted(
        [(1, 0.001), (1, 0.1), (2, 0.001), (2, 0.1)] * 2
    )

    table = dvc(
        repo,
        "exp",
        "show",
        "--csv",
        "--sort-by",
        "metrics/evaluate.json:dev.nll",
        "--sort-order",
        "asc",
        "--keep",
        "Experiment|dev.nll",
        "--drop",
        ".*",
    ).stdout
    rows = [r for r in csv.DictReader(io.StringIO(table)) if r["Experiment"]]
    devs = [float(r["dev.nll"]) for r in rows]
    assert devs == sorted(devs) == sorted(dev for _, dev in runs.values())
    assert all(runs[r["Experiment"]][1] == dev for r, dev in zip(rows, devs))

    chosen = json.loads(sh([sys.executable, "-m", "bigram", "select", "--json"], repo).stdout)
    committed = read_json(repo / "metrics/evaluate.json")["dev"]["nll"]
    best_exp = min(runs, key=lambda n: runs[n][1])
    if runs[best_exp][1] < committed:  # one of a tied pair (they differ in smoothing only)
        assert chosen["kind"] == "experiment" and runs[chosen["name"]][1] == runs[best_exp][1]
    assert chosen["dev_nll"] == min(committed, runs[best_exp][1])
    assert chosen["considered"] == 9

    by = sh([sys.executable, "-m", "bigram", "select", "--by", "model.context", "--json"], repo)
    groups = json.loads(by.stdout)["best"]
    assert [g["group"] for g in groups] == [{"model.context": 1}, {"model.context": 2}]
    trigram = min((n for n in runs if runs[n][0][0] == 2), key=lambda n: runs[n][1])
    assert runs[groups[1]["name"]][1] == groups[1]["dev_nll"] == runs[trigram][1]

    dvc(repo, "exp", "apply", best_exp)
    assert read_json(repo / "metrics/evaluate.json")["dev"]["nll"] == runs[best_exp][1]
    dvc(repo, "exp", "branch", best_exp, "best-on-dev")
    assert "best-on-dev" in sh(["git", "branch"], repo).stdout


@pytest.mark.slow
def test_a_failed_experiment_of_a_sweep_says_why_in_one_line(trained_repo):
    repo = trained_repo
    r = sh(
        [sys.executable, "-m", "bigram", "sweep", "-j", "2", "-S", "train.lr=1e9,10"]
        + ["-S", "train.steps=20"],
        repo,
        check=False,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 of 2 succeeded" in r.stdout
    [line] = r.stderr.splitlines()
    assert re.fullmatch(
        r"error: \S+ failed \(train.lr=1e9 train.steps=20\): train: train diverged at step "
        r"\d+ .*",
        line,
    ), line


@pytest.mark.slow
def test_push_then_pull_restores_everything_without_retraining(trained_repo, tmp_path):
    repo = trained_repo
    dvc(repo, "remote", "add", "-d", "store", str(tmp_path / "remote"))
    sh(["git", "commit", "-qam", "shared cache"], repo)
    dvc(repo, "push")
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    assert not (clone / "models/model.safetensors").exists()
    dvc(clone, "pull")
    for f in (
        "models/model.safetensors",
        "models/checkpoints/step_000200.safetensors",
        "data/split/counts.npy",
        "plots/bigrams.csv",
    ):
        assert (clone / f).read_bytes() == (repo / f).read_bytes(), f
    assert read_json(clone / "metrics/evaluate.json") == read_json(repo / "metrics/evaluate.json")
    out = dvc(clone, "repro").stdout
    assert "Running stage" not in out and "up to date" in out
    verify = sh(
        [sys.executable, "-m", "bigram", "lineage", "--verify", "models/model.safetensors"], clone
    )
    assert "bit-identical" in verify.stdout
