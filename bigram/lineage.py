"""Recording lineage: what each stage consumed and produced, and the code and
versions behind a checkpoint. The stages use it; the audit command
(bigram.audit) reads what it records.

Each record holds the stage's params and the md5 of every input and output (the
digests dvc.lock uses). prepare and split write the chain to data/*/lineage.json,
train stores the whole chain inside every checkpoint.
"""

import platform
import subprocess
from importlib import metadata

from bigram import artifacts
from bigram.codedeps import code_files
from bigram.console import PipelineError

TRAIN_STAGE = "stages/train.py"


def record(stage: str, params: dict, inputs: list[str], outputs: list[str]) -> dict:
    """One link of the chain: the stage's params, the md5 of its files (as dvc.lock
    has them) and their sha256 (for provenance that supply-chain tools verify)."""
    found = {p: artifacts.digests(p) for p in [*inputs, *outputs]}
    return {
        "stage": stage,
        "params": params,
        "inputs": {p: found[p][0] for p in inputs},
        "outputs": {p: found[p][0] for p in outputs},
        "sha256": {p: sha256 for p, (_, sha256) in found.items()},
    }


def check_recorded(
    chain: object, stages: tuple[str, ...], paths: list[str], lineage_file: str
) -> list[dict]:
    """The chain of `stages` read from `lineage_file`, after checking its shape and
    refusing inputs that are not the files the previous stage recorded."""
    problem = artifacts.check_chain(chain, stages, lineage_file)
    if problem:
        raise PipelineError(
            f"{lineage_file} is not a lineage record ({problem}); run `dvc repro` to rebuild it"
        )
    recorded = {p: d for r in chain for p, d in r["outputs"].items()}
    for p in paths:
        if artifacts.md5(p) != recorded.get(p):
            raise PipelineError(
                f"{p} is not the file recorded in {lineage_file}; run `dvc repro` to rebuild both"
            )
    return chain


def git(*args: str) -> str | None:
    """git's stdout, stripped, or None if git is missing or fails."""
    try:
        r = subprocess.run(["git", *args], capture_output=True, text=True)
    except OSError:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def train_code() -> list[str]:
    """The files the train stage runs: what a checkpoint's code identity covers.
    The inputs' code is covered by their digests."""
    return code_files(TRAIN_STAGE)


def code_identity() -> dict:
    """The last commit that changed the train stage's code, and whether the tree
    has changes on top of it. Not HEAD: committing dvc.lock or a README after a
    run must not change what a rerun of the same code writes."""
    paths = train_code()
    commit = git("log", "-1", "--format=%H", "--", *paths)
    if not commit:
        return {"commit": None, "dirty": None, "reason": _why_no_commit()}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--", *paths))}


def _why_no_commit() -> str:
    """Why there is no code commit to record, in words that are true."""
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return "git is not installed"
    if "dubious ownership" in r.stderr or "safe.directory" in r.stderr:
        return "git refused the repository (owned by another user; see git's safe.directory)"
    if "not a git repository" in r.stderr:
        return "trained outside a git repository"
    if r.returncode != 0:
        return "the repository has no commits"
    return "the train stage's code was never committed"


def versions() -> dict:
    """Python's minor version and the pinned libraries'. Not Python's patch
    release: it does not change a result, and would change every checkpoint's bytes."""
    out = {"python": ".".join(platform.python_version_tuple()[:2])}
    for package in ("torch", "numpy", "safetensors", "dvc"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out
