"""The checkpoint format and the lineage records it carries: written, parsed and checked
here only. A checkpoint is untrusted data: every field is checked before any is used.

A checkpoint is a safetensors file: W (float32, V^k×V) and one metadata key, "pipeline",
a JSON object. Schema 2 (this code writes it):

    schema    2
    vocab     the symbols, '.' first
    lineage   the records of prepare, split and train, in order; each record is
              {stage, params, inputs, outputs, sha256, code}: the params sections the
              stage read, the md5 of every file it read and wrote (as dvc.lock has them),
              their sha256, and the git blob id of every file of the stage's code
    versions  Python's minor version and the libraries' versions
    step, loss, ce, reg    the step W was saved at and its loss = ce + reg
    previous  the checkpoint saved before this one ({path, md5, sha256}), null at step 0

Schema 1 (before 2026-12) had no "schema" key, no "code" in the records, and a top-level
"code": {commit, dirty} that depended on git history. It is still read and shown.
"""

import json
import re
from typing import Any

import numpy as np

from bigram import artifacts, context, params
from bigram.artifacts import CHECKPOINTS, COUNTS, PAIRS, SPLIT, VOCAB, is_vocabulary
from bigram.console import PipelineError
from bigram.params import is_number

SCHEMA = 2
# The limit on a checkpoint file: W of the largest size, and its metadata.
LIMIT = 4 * context.MAX_WEIGHTS + artifacts.JSON_LIMIT
REBUILD = "run `dvc repro` to rebuild it"

Meta = dict[str, Any]  # checked by check_meta before any field is used
Link = dict[str, Any]

STAGE_SECTIONS = {"prepare": ("data",), "split": ("split", "model"), "train": ("train",)}
STAGES = tuple(STAGE_SECTIONS)
_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA1 = re.compile(r"[0-9a-f]{40}")
_PATH_LIMIT = 4096
_LINK_KEYS = {1: ("stage", "params", "inputs", "outputs", "sha256")}
_LINK_KEYS[2] = (*_LINK_KEYS[1], "code")
_META_KEYS = {"vocab", "lineage", "versions", "step", "loss", "ce", "reg", "previous"}
# What a checkpoint's records must hold for this code to read it (the rest of the
# params may grow or shrink between versions: an older record stays readable).
_NEEDED = {"model": ("context",), "train": ("steps",)}


def _is_path(p: object) -> bool:
    return isinstance(p, str) and 0 < len(p) <= _PATH_LIMIT and "\0" not in p


def reads_and_writes(stage: str, names: str) -> tuple[list[str], list[str]]:
    """The artifacts a stage's lineage record names: what it reads and what it writes."""
    return {
        "prepare": ([names], [VOCAB, PAIRS]),
        "split": ([VOCAB, PAIRS], [SPLIT, COUNTS]),
        "train": ([VOCAB, COUNTS], []),
    }[stage]


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


def check_link(link: object, schema: int = SCHEMA) -> str | None:
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


def check_chain(chain: object, stages: tuple[str, ...], schema: int = SCHEMA) -> str | None:
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


def schema_of(meta: object) -> int | None:
    """The schema a checkpoint's metadata declares (1 for the unversioned first format)."""
    if not isinstance(meta, dict):
        return None
    if "schema" not in meta:
        return 1 if set(meta) == _META_KEYS | {"code"} else None
    schema = meta["schema"]
    return schema if isinstance(schema, int) and not isinstance(schema, bool) else None


def _check_code_v1(code: object) -> bool:
    return (
        isinstance(code, dict)
        and {"commit", "dirty"} <= set(code) <= {"commit", "dirty", "reason"}
        and (
            code["commit"] is None
            or isinstance(code["commit"], str)
            and bool(_SHA1.fullmatch(code["commit"]))
        )
        and (code["dirty"] is None or isinstance(code["dirty"], bool))
        and (code["commit"] is None) == (code["dirty"] is None)
        and isinstance(code.get("reason", ""), str)
        and len(code.get("reason", "")) <= 500
    )


def check_meta(meta: object) -> str | None:
    """What is wrong with a checkpoint's metadata (None if nothing)."""
    schema = schema_of(meta)
    if schema is None or not isinstance(meta, dict):
        return "its metadata lacks the lineage this pipeline writes"
    if schema > SCHEMA:
        return f"it was written by a newer version of this pipeline (schema {schema}); upgrade"
    if schema < 1:
        return f"its schema {schema} is not one this pipeline ever wrote"
    keys = _META_KEYS | ({"code"} if schema == 1 else {"schema"})
    if set(meta) != keys:
        return f"its metadata is not the fields of schema {schema}"
    if not is_vocabulary(meta["vocab"]):
        return "its vocabulary is not a list of distinct characters, '.' first"
    problem = check_chain(meta["lineage"], STAGES, schema)
    if problem:
        return f"lineage: {problem}"
    if schema == 1 and not _check_code_v1(meta["code"]):
        return "its code record is not {commit, dirty}"
    versions = meta["versions"]
    if not (
        isinstance(versions, dict)
        and len(versions) <= 20
        and all(
            isinstance(k, str)
            and len(k) <= 40
            and (v is None or isinstance(v, str) and len(v) <= 40)
            for k, v in versions.items()
        )
    ):
        return "its versions are not names and version strings"
    steps = meta["lineage"][-1]["params"]["train"]["steps"]
    step = meta["step"]
    if not (isinstance(step, int) and not isinstance(step, bool) and 0 <= step <= steps):
        return f"its step is not an integer from 0 to train.steps ({steps})"
    if not all(is_number(meta[k]) for k in ("loss", "ce", "reg")):
        return "its loss, ce and reg are not finite numbers"
    previous = meta["previous"]
    if (
        (previous is None) != (step == 0)
        or previous is not None
        and not (
            isinstance(previous, dict)
            and set(previous) == {"path", "md5", "sha256"}
            and isinstance(previous["sha256"], str)
            and _SHA256.fullmatch(previous["sha256"])
            and isinstance(previous["path"], str)
            and re.fullmatch(
                re.escape(CHECKPOINTS) + r"/step_\d{6,}\.safetensors", previous["path"]
            )
            and isinstance(previous["md5"], str)
            and _MD5.fullmatch(previous["md5"])
        )
    ):
        return "its previous checkpoint is not a checkpoint path with its md5 and sha256"
    return None


def context_of(chain: list[Link]) -> int:
    """model.context as the split stage recorded it in a checked lineage chain (a
    checkpoint's meta["lineage"], or data/split/lineage.json)."""
    split = next(link for link in chain if link["stage"] == "split")
    return int(split["params"]["model"]["context"])


def to_bytes(W: np.ndarray, meta: Meta) -> bytes:
    from safetensors.numpy import save

    # One metadata key: safetensors writes several keys in hash order, which
    # would make the file's bytes differ between identical runs.
    return save(
        {"W": np.ascontiguousarray(W, dtype=np.float32)},
        metadata={"pipeline": json.dumps(meta, sort_keys=True, allow_nan=False)},
    )


def build_meta(
    vocab: list[str],
    chain: list[Link],
    versions: dict[str, str | None],
    step: int,
    terms: tuple[float, float, float],
    previous: dict[str, str] | None,
) -> Meta:
    """The metadata of the checkpoint saved at `step`, with its (loss, ce, reg)."""
    loss, ce, reg = terms
    return {
        "schema": SCHEMA,
        "vocab": vocab,
        "lineage": chain,
        "versions": versions,
        "step": step,
        "loss": loss,
        "ce": ce,
        "reg": reg,
        "previous": previous,
    }


def parse(data: bytes, path: str) -> tuple[np.ndarray, Meta]:
    """(W, meta) from a checkpoint's bytes, after checking all of its metadata and
    that W is a finite V^k×V matrix for meta['vocab'] and its recorded model.context k.
    Never unpickles: safetensors is a JSON header and raw little-endian numbers."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    bad = f"{path} is not a checkpoint of this pipeline (%s); {REBUILD}"
    try:
        size = int.from_bytes(data[:8], "little")
        if size > artifacts.JSON_LIMIT:
            raise ValueError(f"a header of {size:,} bytes")
        meta = json.loads(json.loads(data[8 : 8 + size])["__metadata__"]["pipeline"])
        W = load(data)["W"]
    except (SafetensorError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise PipelineError(bad % f"{type(e).__name__}: {e}".splitlines()[0][:200]) from None
    problem = check_meta(meta)
    if problem:
        raise PipelineError(bad % problem)
    V, k = len(meta["vocab"]), context_of(meta["lineage"])
    if context.weights_needed(V, k) is None:
        raise PipelineError(bad % f"its model.context {k} is too large for its vocabulary")
    if W.dtype != np.float32 or W.shape != (context.rows(V, k), V):
        raise PipelineError(bad % "W does not match its vocabulary and model.context")
    if not np.isfinite(W).all():
        raise PipelineError(bad % "W has NaN or infinite entries")
    return W, meta


def read(path: str = artifacts.MODEL, vocab: list[str] | None = None) -> tuple[np.ndarray, Meta]:
    """(W, meta) of a checkpoint file; with `vocab`, refusing one trained on another
    vocabulary."""
    from bigram import fsio

    W, meta = parse(fsio.read_bounded(path, LIMIT, REBUILD), path)
    if vocab is not None and meta["vocab"] != vocab:
        raise PipelineError(
            f"{path} was trained on another vocabulary than {VOCAB}; run `dvc repro` to retrain it"
        )
    return W, meta
