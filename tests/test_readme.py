"""The README is executable truth: its flows run as written in a fresh clone.

Every ```console block that follows a `<!-- flow: NAME -->` comment is run, in the order
the README gives, in one clone of the committed project with ../shared beside it. A line
starting with `$ ` is a command, run by bash from the clone's root; the lines after it are
what the README says it prints, and each must appear in what it really printed. In those
lines `…` stands for anything (an experiment's random name, a timing), digests (runs of 7
or more hex digits) are compared as digests, not by value, since they follow the commit
history, and so are DVC's experiment names in brackets; runs of spaces are folded, since
table columns follow the names' lengths. `(exit N)` after a command's output says it exits
N; otherwise it must exit 0.
"""

import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REAL_NAMES, ROOT, env

FLOWS = ["first-run", "own-list", "experiment", "sweep", "audit", "check", "provenance"]
HEX = re.compile(r"\b[0-9a-f]{7,64}\b")
EXP_NAME = re.compile(r"\[[a-z]+-[a-z]+\]")  # DVC's random experiment names, e.g. [molar-pupa]


def normal(line):
    """A line with its runs of spaces (and of table dashes) folded, and experiment names
    made alike: column widths follow the names' lengths."""
    return EXP_NAME.sub("[name]", re.sub(r"-{2,}", "-", re.sub(r"\s+", " ", line.strip())))


def flows(text):
    """{name: [(command, expected lines, exit code)]} of the README's flow blocks."""
    found = {}
    for m in re.finditer(r"<!-- flow: ([\w-]+) -->\s*```console\n(.*?)```", text, re.S):
        steps = []
        for line in m.group(2).splitlines():
            if line.startswith("$ "):
                steps.append([line[2:], [], 0])
            elif (code := re.fullmatch(r"\(exit (\d+)\)", line.strip())) and steps:
                steps[-1][2] = int(code.group(1))
            elif line.strip() and steps:
                steps[-1][1].append(line)
        found[m.group(1)] = steps
    return found


def pattern(line):
    """A regex for an expected line: `…` matches anything, a digest any digest."""
    pieces = []
    for part in normal(line).split("…"):
        pieces.append("[0-9a-f]{7,64}".join(re.escape(p) for p in HEX.split(part)))
    return re.compile(".*?".join(pieces))


def test_the_readme_flows_are_all_present():
    assert list(flows((ROOT / "README.md").read_text())) == FLOWS


def test_the_two_commands_are_the_readmes_and_ci_runs_the_test_command():
    text = (ROOT / "README.md").read_text()
    run, test = re.findall(r"(?m)^    (python3 -m venv .*)$", text)[:2]
    assert run.endswith("&& dvc repro") and "pip install -q -r requirements.txt" in run
    assert test.endswith("python -m pytest") and "requirements-dev.txt" in test
    assert test in (ROOT / ".ci/run").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not REAL_NAMES.exists(), reason=f"{REAL_NAMES} is absent")
def test_the_readme_flows_run_as_written(tmp_path):
    root = tmp_path / "work"
    clone = root / "project"
    (root / "shared/data").mkdir(parents=True)
    shutil.copy(REAL_NAMES, root / "shared/data/names.txt")
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    for key, value in (("user.name", "readme"), ("user.email", "readme@example.com")):
        subprocess.run(["git", "config", key, value], cwd=clone, check=True)
    e = env()
    e["PATH"] = f"{sys.exec_prefix}/bin:{e['PATH']}"  # `bigram` and `dvc` of this venv
    try:
        run_flows(clone, e)
    finally:  # the queue's workers outlive the commands that started them
        subprocess.run(
            ["dvc", "queue", "stop", "--kill"], cwd=clone, env=e, timeout=120, capture_output=True
        )


def run_flows(clone, e):
    for name, steps in flows((ROOT / "README.md").read_text()).items():
        for command, expected, code in steps:
            r = subprocess.run(
                ["bash", "-c", command],
                cwd=clone,
                env=e,
                capture_output=True,
                text=True,
                timeout=600,
            )
            said = r.stdout + r.stderr
            assert r.returncode == code, f"[{name}] $ {command}\n{said}"
            for want in expected:
                regex = pattern(want)
                assert any(regex.search(normal(line)) for line in said.splitlines()), (
                    f"[{name}] $ {command}\nthe README shows: {want}\nit printed:\n{said}"
                )
