"""Experiments people compare: plots, a queued sweep, best-on-dev selection, a shared cache."""

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import time

import pytest

from bigram.select import best
from tests.conftest import dvc, read_json, sh

HEATMAPS = [
    "plots/heatmaps/p_count.png",
    "plots/heatmaps/p_neural.png",
    "plots/heatmaps/p_diff.png",
]
CHROMIUM = shutil.which("chromium")


def colourful_pixels(png):
    import matplotlib.image

    rgb = matplotlib.image.imread(png)[..., :3]
    return int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3).sum())


@pytest.mark.slow
def test_heatmaps_are_labelled_pngs(trained_repo):
    repo = trained_repo
    for png in HEATMAPS:
        data = (repo / png).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert colourful_pixels(repo / png) > 10_000


def screenshot(html, shot, profile):
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1000,2400",
            "--virtual-time-budget=5000",
            f"--screenshot={shot}",
            html.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    import matplotlib.image

    rgb = matplotlib.image.imread(shot)[..., :3]
    return int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.slow
def test_plots_show_renders_charts_and_images_offline_in_headless_chromium(trained_repo, tmp_path):
    repo = trained_repo
    dvc(repo, "plots", "show", "-o", "html")
    page = (repo / "html/index.html").read_text()
    assert "<script src=" not in page  # vega is inline (.dvc/plots.html), not from a CDN
    for png in HEATMAPS:
        name = "workspace_" + png.replace("/", "_")
        assert f'<img src="static/{name}">' in page
        assert (repo / "html/static" / name).is_file()
    no_images = page.replace("<img", "<span")
    variants = {
        "full": page,
        "no images": no_images,
        "neither": no_images.replace("vegaEmbed(", "void("),
    }
    seen = {}
    for name, text in variants.items():
        html = repo / "html" / f"{name.replace(' ', '-')}.html"
        html.write_text(text)
        seen[name] = screenshot(html, tmp_path / f"{name}.png", tmp_path / "profile")
    assert seen["full"] > 100_000, seen  # the heatmaps show...
    assert 1000 < seen["no images"] < 20_000, seen  # ...the line charts are drawn...
    assert seen["neither"] == 0, seen  # ...and by vega, with no network


@pytest.mark.slow
def test_plots_diff_overlays_two_experiments(trained_repo):
    repo = trained_repo
    out = dvc(repo, "exp", "run", "-S", "train.lr=10").stdout
    name = re.search(r"Ran experiment\(s\): (\S+)", out).group(1)
    diff = json.loads(dvc(repo, "plots", "diff", "HEAD", name, "--json").stdout)
    assert diff.get("errors") in (None, [])
    for plot in ("plots/train_loss.csv", "plots/eval_steps.csv"):
        assert sorted(diff["data"][plot][0]["revisions"]) == sorted(["HEAD", name])
    for png in HEATMAPS:
        assert {entry["revisions"][0] for entry in diff["data"][png]} == {"HEAD", name}


def wait_for_queue(repo, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = dvc(repo, "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            return status
        time.sleep(2)
    raise AssertionError(f"queue still busy after {timeout}s:\n{status}")


@pytest.mark.slow
def test_sweep_on_the_queue_sorted_by_dev_and_selected(trained_repo):
    repo = trained_repo
    dvc(repo, "exp", "run", "--queue", "-S", "train.reg=0.001,0.1", "-S", "train.lr=10,50")
    try:
        dvc(repo, "queue", "start", "--jobs", "2")
        status = wait_for_queue(repo)
    finally:
        dvc(repo, "queue", "stop", check=False)
    assert status.count("Success") == 4, status

    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    head = next(r for r in shown if r["rev"] != "workspace")
    runs = {}
    for exp in head["experiments"]:
        for rev in exp["revs"]:
            train = rev["data"]["params"]["params.yaml"]["data"]["train"]
            dev = rev["data"]["metrics"]["metrics/evaluate.json"]["data"]["dev"]["nll"]
            runs[rev["name"]] = ((train["lr"], train["reg"]), dev)
    assert sorted(p for p, _ in runs.values()) == [(10, 0.001), (10, 0.1), (50, 0.001), (50, 0.1)]

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
    assert [r["Experiment"] for r in rows] == sorted(runs, key=lambda n: runs[n][1])
    assert devs == sorted(devs)

    chosen = json.loads(sh([sys.executable, "-m", "bigram", "select", "--json"], repo).stdout)
    committed = read_json(repo / "metrics/evaluate.json")["dev"]["nll"]
    best_exp = min(runs, key=lambda n: runs[n][1])
    if runs[best_exp][1] < committed:
        assert chosen["name"] == best_exp and chosen["kind"] == "experiment"
    assert chosen["dev_nll"] == min(committed, runs[best_exp][1])
    assert chosen["considered"] == 5

    dvc(repo, "exp", "apply", best_exp)
    assert read_json(repo / "metrics/evaluate.json")["dev"]["nll"] == runs[best_exp][1]
    dvc(repo, "exp", "branch", best_exp, "best-on-dev")
    assert "best-on-dev" in sh(["git", "branch"], repo).stdout


def test_select_reports_test_only_for_the_winner():
    def entry(name, dev, test, kind_rev):
        return {
            "rev": kind_rev,
            "name": name,
            "data": {
                "params": {},
                "metrics": {
                    "metrics/evaluate.json": {"data": {"dev": {"nll": dev}, "test": {"nll": test}}}
                },
            },
        }

    shown = [
        {
            "rev": "workspace",
            **{k: v for k, v in entry(None, 0.1, 0.1, "workspace").items() if k != "rev"},
        },
        {
            **entry("main", 2.5, 2.0, "a" * 40),
            "experiments": [
                {"revs": [entry("x", 2.4, 2.6, "b" * 40)]},
                {"revs": [entry("y", 2.45, 1.0, "c" * 40)]},
                {"revs": [{"rev": "d" * 40, "name": "failed", "data": None}]},
            ],
        },
    ]
    (name, rev, kind, _, metrics), considered = best(shown)
    # x wins on dev although y has the better test score: test must not decide.
    assert (name, kind, considered, metrics["test"]["nll"]) == ("x", "experiment", 3, 2.6)


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
        *HEATMAPS,
    ):
        assert (clone / f).read_bytes() == (repo / f).read_bytes(), f
    assert read_json(clone / "metrics/evaluate.json") == read_json(repo / "metrics/evaluate.json")
    out = dvc(clone, "repro").stdout
    assert "Running stage" not in out and "up to date" in out
    verify = sh(
        [sys.executable, "-m", "bigram", "lineage", "--verify", "models/model.safetensors"], clone
    )
    assert "bit-identical" in verify.stdout
