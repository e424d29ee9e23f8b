"""DVC behaviour users rely on, with the real dvc CLI in a temporary git repo."""

import json
import re
import sys

import pytest

from tests.conftest import ROOT, STAGES, dvc, read_json, sh, snapshot

pytestmark = pytest.mark.slow


def ran(output):
    return re.findall(r"Running stage '(\w+)'", output)


def repro_and_commit(repo):
    out = dvc(repo, "repro").stdout
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "baseline run"], repo)
    return out


def test_fresh_repro_runs_every_stage_then_nothing(repo):
    assert ran(repro_and_commit(repo)) == STAGES
    for f in (
        "data/prepared/vocab.json",
        "data/prepared/pairs.npy",
        "data/split/counts.npy",
        "models/model.safetensors",
        "plots/train_loss.csv",
        "plots/bigrams.csv",
        "data/samples.txt",
    ):
        assert (repo / f).is_file(), f
    assert sorted(p.name for p in (repo / "metrics").iterdir()) == sorted(
        f"{s}.json" for s in STAGES
    )
    second = dvc(repo, "repro").stdout
    assert ran(second) == []
    assert "up to date" in second


def test_changing_lr_reruns_train_and_downstream_only(trained_repo):
    repo = trained_repo
    text = (repo / "params.yaml").read_text().replace("lr: 50", "lr: 10")
    (repo / "params.yaml").write_text(text)
    assert ran(dvc(repo, "repro").stdout) == ["train", "evaluate", "compare", "sample"]


def test_exp_run_shows_changed_metrics_and_params(trained_repo):
    repo = trained_repo
    before = read_json(repo / "metrics/train.json")
    out = dvc(repo, "exp", "run", "-S", "train.lr=10").stdout
    assert ran(out) == ["train", "evaluate", "compare", "sample"]

    params = json.loads(dvc(repo, "params", "diff", "--json").stdout)
    assert params["params.yaml"]["train.lr"] == {"old": 50, "new": 10, "diff": -40}

    diff = json.loads(dvc(repo, "metrics", "diff", "--json").stdout)
    assert diff["metrics/train.json"]["loss"]["old"] == before["loss"]
    assert (
        diff["metrics/train.json"]["loss"]["new"] == read_json(repo / "metrics/train.json")["loss"]
    )
    assert diff["metrics/train.json"]["loss"]["new"] != before["loss"]
    assert "dev.nll" in diff["metrics/evaluate.json"]
    assert "metrics/prepare.json" not in diff  # unchanged upstream metrics

    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    baseline = next(r for r in shown if r["rev"] != "workspace")
    exps = [e for e in baseline["experiments"] for e in e["revs"]]
    assert len(exps) == 1
    data = exps[0]["data"]
    assert data["params"]["params.yaml"]["data"]["train"]["lr"] == 10
    metrics = data["metrics"]
    assert set(metrics) == {f"metrics/{s}.json" for s in STAGES}
    assert (
        metrics["metrics/train.json"]["data"]["loss"] == diff["metrics/train.json"]["loss"]["new"]
    )
    assert baseline["data"]["metrics"]["metrics/train.json"]["data"]["loss"] == before["loss"]


def test_after_a_failed_repro_dvc_checkout_brings_the_previous_outputs_back(trained_repo):
    # DVC removes a stage's outputs before it runs the stage (outs are not `persist`, which
    # would switch the run-cache off), so the README's recovery is checkout, not "as before".
    repo = trained_repo
    before = snapshot(repo)
    text = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(text.replace("context: 1", "context: 9"))
    failed = dvc(repo, "repro", check=False)
    assert failed.returncode != 0
    assert "error: params.yaml: model.context = 9" in failed.stderr
    assert not (repo / "data/split/counts.npy").exists()  # what DVC removed, not the stage

    sh(["git", "checkout", "--", "params.yaml", "metrics", "plots"], repo)
    dvc(repo, "checkout")
    assert snapshot(repo) == before
    assert "up to date" in dvc(repo, "status").stdout


def test_a_changed_pin_makes_exactly_the_stages_importing_that_library_stale(trained_repo):
    text = (trained_repo / "pyproject.toml").read_text()
    assert 'safetensors = "0.8.0"' in text
    (trained_repo / "pyproject.toml").write_text(
        text.replace('safetensors = "0.8.0"', 'safetensors = "0.8.1"')
    )
    stale = json.loads(dvc(trained_repo, "status", "--json").stdout)
    assert sorted(stale) == ["compare", "evaluate", "sample", "train"]
    changed = {"pyproject.toml": {"tool.bigram.pins.safetensors": "modified"}}
    assert all(entry == [{"changed deps": changed}] for entry in stale.values()), stale
    # and the stage refuses to write anything under the old installed version
    r = dvc(trained_repo, "repro", check=False)
    assert r.returncode != 0
    assert "error: safetensors 0.8.0 is installed, but pyproject.toml pins safetensors 0.8.1" in (
        r.stdout + r.stderr
    )


def test_after_a_failed_exp_run_the_readmes_line_restores_params_and_outputs(trained_repo):
    before = snapshot(trained_repo)
    params_before = (trained_repo / "params.yaml").read_text()
    r = dvc(trained_repo, "exp", "run", "-S", "train.lr=-1", check=False)
    assert r.returncode != 0 and "train.lr = -1 is not allowed" in r.stdout + r.stderr
    assert "lr: -1" in (trained_repo / "params.yaml").read_text()  # DVC left it there
    readme = (ROOT / "README.md").read_text()
    line = "git checkout -- params.yaml metrics plots && dvc checkout --force"
    assert f"    {line}\n" in readme
    sh(["bash", "-c", line.replace("dvc ", f"{sys.executable} -m dvc ")], trained_repo)
    assert (trained_repo / "params.yaml").read_text() == params_before
    assert snapshot(trained_repo) == before
    assert "[train]" in dvc(trained_repo, "exp", "run", "-S", "train.lr=10").stdout
