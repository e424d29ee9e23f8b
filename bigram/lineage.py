"""Recording lineage: what each stage consumed and produced, and the code behind it.
The stages use it; the audit (bigram.audit) re-derives what it records.

Each record holds the stage's params, the md5 of every input and output (the digests
dvc.lock uses) and their sha256, all of the exact bytes the stage parsed or wrote
(never a second read of a file that could have changed in between), and the git blob
id of every file of the stage's code. prepare and split write the chain to
data/*/lineage.json, train stores the whole chain inside every checkpoint. Records
are untrusted until check_link has checked them (a checkpoint comes from anywhere).
"""

import re
from typing import Any

from bigram import artifacts, params, pipeline
from bigram.codedeps import code_digests, stage_entry
from bigram.console import PipelineError
from bigram.params import is_number

Link = dict[str, Any]  # one stage's record, checked by check_link before use

STAGES = pipeline.RECORDED
STAGE_SECTIONS = {stage: pipeline.STAGES[stage].params for stage in STAGES}
_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA1 = re.compile(r"[0-9a-f]{40}")
_PATH_LIMIT = 4096
# The fields of a record in each checkpoint schema (bigram.checkpoint); 2 added "code".
_LINK_KEYS: dict[int, tuple[str, ...]] = {1: ("stage", "params", "inputs", "outputs", "sha256")}
_LINK_KEYS[2] = (*_LINK_KEYS[1], "code")
# What a checkpoint's records must hold for this code to read it (the rest of the
# params may grow or shrink between versions: an older record stays readable).
_NEEDED = {"model": ("context",), "train": ("steps",)}


def _is_path(p: object) -> bool:
    return isinstance(p, str) and 0 < len(p) <= _PATH_LIMIT and "\0" not in p


def reads_and_writes(stage: str, names: str) -> tuple[list[str], list[str]]:
    """The artifacts a stage's lineage record names: what it reads and what it writes."""
    io = pipeline.STAGES[stage]
    return io.recorded_inputs(names), io.recorded_outputs()


def _check_params(stage: str, recorded: object) -> str | None:
    """The recorded sections of `stage`: known keys by params.yaml's rules, unknown
    keys (from another version of the code) as plain values."""
    if not isinstance(recorded, dict) or set(recorded) != set(STAGE_SECTIONS[stage]):
        return f"the {stage} params are not the sections {', '.join(STAGE_SECTIONS[stage])}"
    for section, values in recorded.items():
        if not isinstance(values, dict) or len(values) > 100:
            return f"the {stage} params' {section} section is not a mapping"
        for key, value in values.items():
            rule = params.RULES.get(f"{section}.{key}")
            plain = value is None or isinstance(value, (str, bool)) or is_number(value)
            if (
                not isinstance(key, str)
                or not plain
                or isinstance(value, str)
                and len(value) > 4096
            ):
                return f"{section}.{str(key)[:40]} is not a plain value"
            if rule and not rule[0](value):
                return f"{section}.{key} = {value!r} is not allowed"
        for key in _NEEDED.get(section, ()):
            if key not in values:
                return f"the {stage} params lack {section}.{key}"
    return None


def check_link(link: object, schema: int = 2) -> str | None:
    """What is wrong with one lineage record (None if nothing)."""
    if not isinstance(link, dict) or set(link) != set(_LINK_KEYS[schema]):
        return f"a record is not {{{', '.join(_LINK_KEYS[schema])}}}"
    stage = link["stage"]
    if not isinstance(stage, str) or stage not in STAGE_SECTIONS:
        return f"unknown stage {str(stage)[:40]!r}"
    problem = _check_params(stage, link["params"])
    if problem:
        return problem
    for kind in ("inputs", "outputs"):
        files = link[kind]
        if not isinstance(files, dict) or not all(
            _is_path(k) and isinstance(v, str) and _MD5.fullmatch(v) for k, v in files.items()
        ):
            return f"the {stage} {kind} are not paths with md5 digests"
    names = link["params"].get("data", {}).get("names")
    if stage == "prepare" and not _is_path(names):
        return "the prepare record names no names file"
    if stage == "prepare" and params.outside_project(names):
        return "the prepare record names a names file outside the project"
    reads, writes = reads_and_writes(stage, names)
    if set(link["inputs"]) != set(reads) or set(link["outputs"]) != set(writes):
        return f"the {stage} record does not name the files that stage reads and writes"
    sha256 = link["sha256"]
    if not (
        isinstance(sha256, dict)
        and set(sha256) == set(link["inputs"]) | set(link["outputs"])
        and all(isinstance(v, str) and _SHA256.fullmatch(v) for v in sha256.values())
    ):
        return f"the {stage} sha256 digests are not those of its inputs and outputs"
    code = link.get("code", {})
    if not (
        isinstance(code, dict)
        and len(code) <= 1000
        and all(_is_path(k) and isinstance(v, str) and _SHA1.fullmatch(v) for k, v in code.items())
    ):
        return f"the {stage} code is not paths with git blob ids"
    return None


def check_chain(chain: object, stages: tuple[str, ...], schema: int = 2) -> str | None:
    """What is wrong with a lineage chain that should hold `stages`, in order."""
    if not isinstance(chain, list) or len(chain) != len(stages):
        return f"not a list of the {', '.join(stages)} records"
    for link, stage in zip(chain, stages):
        problem = check_link(link, schema)
        if problem:
            return problem
        if link["stage"] != stage:
            return f"the records are not {', '.join(stages)}, in order"
    return None


def context_of(chain: list[Link]) -> int:
    """model.context as the split stage recorded it in a checked lineage chain (a
    checkpoint's meta["lineage"], or data/split/lineage.json)."""
    split = next(link for link in chain if link["stage"] == "split")
    return int(split["params"]["model"]["context"])


def record(
    stage: str,
    params: dict[str, Any],
    inputs: dict[str, bytes],
    outputs: dict[str, bytes],
    code: dict[str, str],
) -> Link:
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
) -> list[Link]:
    """The chain of `stages` read from `lineage_file`, after checking its shape and
    refusing inputs (`read`: path -> the bytes the stage read) that are not the files
    the previous stage recorded."""
    problem = check_chain(chain, stages)
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


def read_recorded(lineage_file: str, stages: tuple[str, ...], read: dict[str, bytes]) -> list[Link]:
    """check_recorded on the chain in `lineage_file`: what a stage does with its inputs."""
    return check_recorded(artifacts.read_json(lineage_file), stages, read, lineage_file)
