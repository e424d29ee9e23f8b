"""What every stage module promises, whatever it computes: no arguments, a --help that
says what it reads and writes, and no heavy import on the experiment path."""

import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, env, stage

STAGES = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


@pytest.mark.parametrize("name", STAGES)
def test_help_says_what_the_stage_reads_and_writes_and_touches_nothing(project, name):
    r = subprocess.run(
        [sys.executable, "-m", f"stages.{name}", "--help"],
        cwd=project,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "Reads" in r.stdout and "Writes" in r.stdout
    assert sorted(p.name for p in project.iterdir()) == sorted(
        p.name for p in project.iterdir() if p.name not in ("models", "metrics", "plots")
    )
    assert not (project / "metrics").exists() and not (project / "data/prepared").exists()


@pytest.mark.parametrize("name", STAGES)
def test_an_argument_is_refused_before_any_work(project, name):
    r = subprocess.run(
        [sys.executable, "-m", f"stages.{name}", "--steps", "5"],
        cwd=project,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "unrecognized arguments: --steps 5" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (project / "data/prepared").exists()


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


# Runs a stage in-process and prints the heavy modules it imported.
IMPORTS = """
import runpy, sys
sys.argv = ["stage"]
runpy.run_module("stages." + sys.argv_stage, run_name="__main__")
print("heavy:" + ",".join(sorted(m for m in ("torch", "matplotlib", "pandas") if m in sys.modules)))
"""


def test_nothing_after_split_imports_torch_or_matplotlib(project):
    heavy = {}
    for name in STAGES:
        if name in ("prepare", "split"):
            stage(project, name)
            continue
        script = IMPORTS.replace("sys.argv_stage", repr(name))
        r = subprocess.run(
            [sys.executable, "-c", script],
            cwd=project,
            env=env(),
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        heavy[name] = r.stdout.splitlines()[-1].removeprefix("heavy:")
    assert heavy == {name: "" for name in STAGES if name not in ("prepare", "split")}
