"""Bytes depend on the code's content, never on git history: a shallow clone, a rebase
and a worktree reproduce the committed dvc.lock byte for byte, and a project in a
subfolder of a larger repository verifies."""

import sys

import pytest

from tests.conftest import copy_project, dvc, init_git, sh

pytestmark = pytest.mark.slow
MODEL = "models/model.safetensors"


def outs(d):
    import yaml

    lock = yaml.safe_load((d / "dvc.lock").read_text())["stages"]
    return {(s, o["path"]): o["md5"] for s, e in lock.items() for o in e["outs"]}


def test_a_shallow_clone_a_rebase_and_a_worktree_reproduce_the_lock(trained_repo, tmp_path):
    committed = (trained_repo / "dvc.lock").read_bytes()
    # history the code does not see: more commits, then the run's commit rewritten
    (trained_repo / "NOTES").write_text("a later commit\n")
    sh(["git", "add", "NOTES"], trained_repo)
    sh(["git", "commit", "-qm", "notes"], trained_repo)
    sh(
        ["git", "rebase", "-q", "--exec", "git commit -q --amend --no-edit --date=now", "--root"],
        trained_repo,
    )  # every commit id changes, no file does
    shallow = tmp_path / "shallow"
    sh(["git", "clone", "-q", "--depth", "1", f"file://{trained_repo}", str(shallow)], tmp_path)
    worktree = tmp_path / "worktree"
    sh(["git", "worktree", "add", "-q", str(worktree)], trained_repo)
    for d in (trained_repo, shallow, worktree):
        dvc(d, "config", "--local", "core.analytics", "false")
        dvc(d, "repro", "--force", "-q")
        assert (d / "dvc.lock").read_bytes() == committed, d
        assert sh(["git", "status", "--porcelain", "dvc.lock"], d).stdout == ""


@pytest.mark.parametrize("rev", [[], ["--rev", "HEAD"]])
def test_a_project_in_a_subfolder_of_a_larger_repository_verifies(tmp_path, rev):
    top = tmp_path / "mono"
    project = copy_project(top / "ml" / "names")
    (top / "README").write_text("a monorepo\n")
    init_git(top)  # the project keeps its own .dvc: what `dvc init --subdir` makes
    dvc(project, "config", "core.analytics", "false")
    sh(["git", "add", "-A"], top)
    sh(["git", "commit", "-qm", "init"], top)
    dvc(project, "repro", "-q")
    sh(["git", "add", "-A"], top)
    sh(["git", "commit", "-qm", "run"], top)
    r = sh([sys.executable, "-m", "bigram", "lineage", "--verify", *rev, MODEL], project, False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the checkpoint at step 200, bit-identical" in r.stdout
    assert outs(project) == outs_of_committed()


def outs_of_committed():
    from tests.conftest import ROOT

    return outs(ROOT)
