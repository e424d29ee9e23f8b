"""The README and its docs are executable truth: their flows run as written in a fresh clone.

Every ```console block that follows a `<!-- flow: NAME -->` comment is run, in reading order
(README.md, then the docs/ pages in PAGES' order, each page top to bottom), in one clone of
the committed project with ../shared beside it, so each flow starts where the one before left
the clone. A line starting with `$ ` is a command, run by bash from the clone's root; the
lines after it are what the page says it prints, and each must appear in what it really
printed. In those lines `…` stands for anything (an experiment's random name, a timing),
digests (runs of 7 or more hex digits) are compared as digests, not by value, since they
follow the commit history, and so are DVC's experiment names in brackets; runs of spaces are
folded, since table columns follow the names' lengths. `(exit N)` after a command's output
says it exits N; otherwise it must exit 0.

The quick tests keep the pages honest without running them: every ```console block is a
flow, the README stays short, and every relative link resolves in a plain clone.
"""

import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REAL_NAMES, ROOT, env

FLOWS = ["first-run", "own-list", "experiment", "sweep", "audit", "check", "provenance"]
# Every page, in reading order: the flows run in this order, each page's top to bottom.
PAGES = [
    "README.md",
    "docs/your-own-names.md",
    "docs/experiments.md",
    "docs/auditing.md",
    "docs/python-api.md",
    "docs/reproducibility.md",
    "docs/reference.md",
    "docs/performance.md",
    "docs/troubleshooting.md",
]
README_LIMIT = 12 * 1024  # bytes: a README a newcomer reads in five minutes
HEX = re.compile(r"\b[0-9a-f]{7,64}\b")
EXP_NAME = re.compile(r"\[[a-z]+-[a-z]+\]")  # DVC's random experiment names, e.g. [molar-pupa]


def normal(line):
    """A line with its runs of spaces (and of table dashes) folded, and experiment names
    made alike: column widths follow the names' lengths."""
    return EXP_NAME.sub("[name]", re.sub(r"-{2,}", "-", re.sub(r"\s+", " ", line.strip())))


def flows(text):
    """[(name, [(command, expected lines, exit code)])] of a page's flow blocks, in order."""
    found = []
    for m in re.finditer(r"<!-- flow: ([\w-]+) -->\s*```console\n(.*?)```", text, re.S):
        steps = []
        for line in m.group(2).splitlines():
            if line.startswith("$ "):
                steps.append([line[2:], [], 0])
            elif (code := re.fullmatch(r"\(exit (\d+)\)", line.strip())) and steps:
                steps[-1][2] = int(code.group(1))
            elif line.strip() and steps:
                steps[-1][1].append(line)
        found.append((m.group(1), steps))
    return found


def all_flows():
    """Every page's flows, in reading order."""
    return [flow for page in PAGES for flow in flows((ROOT / page).read_text())]


def pattern(line):
    """A regex for an expected line: `…` matches anything, a digest any digest."""
    pieces = []
    for part in normal(line).split("…"):
        pieces.append("[0-9a-f]{7,64}".join(re.escape(p) for p in HEX.split(part)))
    return re.compile(".*?".join(pieces))


def prose(text):
    """The text without fenced blocks, indented code blocks and code spans: what GitHub
    renders as prose, where headings and links are."""
    text = re.sub(r"(?ms)^```.*?^```[ \t]*$", "", text)
    text = re.sub(r"(?m)^ {4,}\S.*$", "", text)
    return re.sub(r"(`+).*?\1", "", text)


def slug(heading):
    """GitHub's anchor for a heading: lowercased, punctuation but '-' and '_' dropped,
    spaces turned into '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text):
    """The anchors of a page's headings; a repeated heading gets -1, -2, ... as on GitHub."""
    seen, found = {}, set()
    for heading in re.findall(r"(?m)^#{1,6} +(.+?) *#*$", re.sub(r"(?ms)^```.*?^```", "", text)):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return found


def test_the_pages_are_the_docs_in_reading_order():
    assert sorted(PAGES[1:]) == sorted(
        p.relative_to(ROOT).as_posix() for p in ROOT.glob("docs/*.md")
    )
    assert PAGES[0] == "README.md"


def test_the_readme_flows_are_all_present():
    assert [name for name, _ in all_flows()] == FLOWS


@pytest.mark.parametrize("page", PAGES)
def test_every_console_block_is_a_flow(page):
    """A ```console block without a flow marker would never be run: it could drift."""
    text = (ROOT / page).read_text()
    blocks = re.findall(r"(?m)^```console$", text)
    assert len(blocks) == len(flows(text)), f"{page}: a ```console block without a flow marker"
    for shell in ("bash", "sh", "shell", "zsh"):  # shell commands are written as flows
        assert not re.search(rf"(?m)^```{shell}$", text), f"{page}: a ```{shell} block"


def test_the_readme_is_short():
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; the rest belongs in docs/"


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves_in_a_plain_clone(page):
    source = ROOT / page
    for target in re.findall(r"\]\(([^()\s]+)\)", prose(source.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (source.parent / path).resolve() if path else source
        assert file.is_relative_to(ROOT) and file.exists(), f"{page}: {target} is not in the clone"
        if anchor:
            assert anchor in anchors(file.read_text()), f"{page}: {target} names no heading"


def test_the_two_commands_are_the_readmes_and_ci_runs_the_test_command():
    text = (ROOT / "README.md").read_text()
    run, test = re.findall(r"(?m)^    (python3 -m venv .*)$", text)[:2]
    assert run.endswith("&& dvc repro") and "pip install -q -r requirements.txt" in run
    assert test.split(" && ")[-1].startswith("python -m pytest") and "requirements-dev.txt" in test
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
    for name, steps in all_flows():
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
