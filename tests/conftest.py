import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REAL_NAMES = ROOT.parent / "shared" / "data" / "names.txt"
NOTEBOOK_NAMES = [
    "emma",
    "olivia",
    "ava",
    "isabella",
    "sophia",
    "mia",
    "charlotte",
    "amelia",
    "harper",
    "evelyn",
    "abigail",
    "emily",
    "ella",
    "elizabeth",
    "camila",
    "luna",
    "sofia",
    "avery",
    "mila",
    "aria",
]
PROJECT_FILES = [
    "bigram",
    "stages",
    "pyproject.toml",
    "dvc.yaml",
    "params.yaml",
    "data/names.txt",
    ".dvc/config",
    ".dvc/plots.html",
    ".dvc/plots",
    ".dvc/.gitignore",
    ".dvcignore",
]
# The stage list lives in dvc.yaml only.
STAGES = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


def env():
    """The test's interpreter first on PATH, so dvc.yaml's `python` is this venv's."""
    e = dict(os.environ)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e["DVC_NO_ANALYTICS"] = "1"
    return e


def sh(args, cwd, check=True):
    r = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def dvc(cwd, *args, check=True):
    return sh([sys.executable, "-m", "dvc", *args], cwd, check)


def stage(cwd, name, check=True):
    return sh([sys.executable, "-m", f"stages.{name}"], cwd, check)


def snapshot(d):
    """Every output file's bytes, to compare before and after a failed run."""
    return {
        str(p.relative_to(d)): p.read_bytes()
        for top in ("data", "models", "metrics", "plots")
        for p in sorted((d / top).rglob("*"))
        if p.is_file()
    }


def read_json(path):
    return json.loads(Path(path).read_text())


def set_params(cwd, **overrides):
    """set_params(d, train__lr=10) edits d/params.yaml like `dvc exp run -S train.lr=10`."""
    path = Path(cwd) / "params.yaml"
    p = yaml.safe_load(path.read_text())
    for key, value in overrides.items():
        section, name = key.split("__")
        p.setdefault(section, {})[name] = value
    path.write_text(yaml.safe_dump(p, sort_keys=False))


def use_real_names(d):
    """Point the project copy `d` at the 32,033-name list, copied into its data/."""
    shutil.copy(REAL_NAMES, d / "data/names-full.txt")
    set_params(d, data__names="data/names-full.txt")


def copy_project(d):
    """Copy the project's sources, without any outputs, as a fresh clone has them, to `d`."""
    for rel in PROJECT_FILES:
        src, dst = ROOT / rel, d / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return d


@pytest.fixture
def project(tmp_path):
    """A copy of the project's sources, without any outputs, as a fresh clone has them."""
    return copy_project(tmp_path / "project")


def init_git(d):
    """Make `d` a git repo with a test identity (no commit yet)."""
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.name", "test"],
        ["git", "config", "user.email", "test@example.com"],
        ["git", "config", "commit.gpgsign", "false"],
    ):
        sh(cmd, d)
    return d


def init_repo(d):
    """Make the project copy `d` a committed git repo, ready for the real dvc CLI."""
    init_git(d)
    dvc(d, "config", "core.analytics", "false")
    commit_all(d, "init")
    return d


def commit_all(d, message):
    sh(["git", "add", "-A"], d)
    sh(["git", "commit", "-qm", message], d)


@pytest.fixture
def repo(project):
    """The project copy as a committed git repo, ready for the real dvc CLI."""
    return init_repo(project)


@pytest.fixture(scope="session")
def trained_project_template(tmp_path_factory):
    """Built once per session: a project copy after running every stage (no git, no DVC)."""
    d = copy_project(tmp_path_factory.mktemp("stages") / "project")
    for name in STAGES:
        stage(d, name)
    return d


def private_copy(template, tmp_path):
    """A test's own copy of a session-built project (outputs, git and DVC state)."""
    d = tmp_path / "project"
    shutil.copytree(template, d, symlinks=True)
    return d


@pytest.fixture
def trained_project(trained_project_template, tmp_path):
    """A private copy of the project with every stage's outputs."""
    return private_copy(trained_project_template, tmp_path)


@pytest.fixture(scope="session")
def baseline_repo(tmp_path_factory):
    """Built once per session: the repo after `dvc repro`, with the run committed.
    Tests get copies (trained_repo), so the suite pays for one cold repro."""
    d = tmp_path_factory.mktemp("baseline") / "project"
    copy_project(d)
    init_repo(d)
    dvc(d, "repro")
    commit_all(d, "baseline run")
    return d


@pytest.fixture
def trained_repo(baseline_repo, tmp_path):
    """A private copy of the baseline repo: git history, DVC cache and outputs."""
    return private_copy(baseline_repo, tmp_path)
