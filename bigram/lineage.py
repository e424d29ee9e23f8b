"""Recording lineage: what each stage consumed and produced, and the code behind it.
The stages use it; the audit (bigram.audit) re-derives what it records.

Each record holds the stage's params, the md5 of every input and output (the digests
dvc.lock uses) and their sha256, all of the exact bytes the stage parsed or wrote
(never a second read of a file that could have changed in between), and the git blob
id of every file of the stage's code. prepare and split write the chain to
data/*/lineage.json, train stores the whole chain inside every checkpoint.
"""

import platform
from importlib import metadata

from bigram import artifacts, checkpoint
from bigram.codedeps import code_digests, stage_entry
from bigram.console import PipelineError


def record(
    stage: str,
    params: dict,
    inputs: dict[str, bytes],
    outputs: dict[str, bytes],
    code: dict[str, str],
) -> checkpoint.Link:
    """One link of the chain, from the bytes the stage read and wrote."""
    files = {**inputs, **outputs}
    return {
        "stage": stage,
        "params": params,
        "inputs": {p: artifacts.md5_bytes(b) for p, b in inputs.items()},
        "outputs": {p: artifacts.md5_bytes(b) for p, b in outputs.items()},
        "sha256": {p: artifacts.sha256_bytes(b) for p, b in files.items()},
        "code": code,
    }


def stage_code(stage: str, root: str = ".") -> dict[str, str]:
    """The git blob id of every file `stage` runs (its import closure)."""
    return code_digests(stage_entry(stage), root)


def check_recorded(
    chain: object, stages: tuple[str, ...], read: dict[str, bytes], lineage_file: str
) -> list[checkpoint.Link]:
    """The chain of `stages` read from `lineage_file`, after checking its shape and
    refusing inputs (`read`: path -> the bytes the stage read) that are not the files
    the previous stage recorded."""
    problem = checkpoint.check_chain(chain, stages)
    if problem:
        raise PipelineError(
            f"{lineage_file} is not a lineage record ({problem}); run `dvc repro` to rebuild it"
        )
    assert isinstance(chain, list)
    recorded = {p: d for r in chain for p, d in r["outputs"].items()}
    for p, data in read.items():
        if artifacts.md5_bytes(data) != recorded.get(p):
            raise PipelineError(
                f"{p} is not the file recorded in {lineage_file}; run `dvc repro` to rebuild both"
            )
    return chain


def versions() -> dict[str, str | None]:
    """Python's minor version and the pinned libraries'. Not Python's patch
    release: it does not change a result, and would change every checkpoint's bytes."""
    out: dict[str, str | None] = {"python": ".".join(platform.python_version_tuple()[:2])}
    for package in ("torch", "numpy", "safetensors", "dvc"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out
