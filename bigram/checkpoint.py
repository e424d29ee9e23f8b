"""The checkpoint format: written, parsed and checked here only (the lineage records
it carries are bigram.lineage's). A checkpoint is untrusted data: every field is
checked before any is used.

A checkpoint is a safetensors file: W (float32, V^k×V) and one metadata key, "pipeline",
a JSON object. Schema 2 (this code writes it):

    schema    2
    vocab     the symbols, '.' first
    lineage   the records of prepare, split and train, in order; each record is
              {stage, params, inputs, outputs, sha256, code}: the params sections the
              stage read, the md5 of every file it read and wrote (as dvc.lock has them),
              their sha256, and the git blob id of every file of the stage's code
    versions  the pinned versions of the libraries the train stage imports (pyproject.toml's
              [tool.bigram.pins]): what the project declares, not what is installed
    step, loss, ce, reg    the step W was saved at and its loss = ce + reg
    previous  the checkpoint saved before this one ({path, md5, sha256}), null at step 0

Schema 1 (before 2026-12) had no "schema" key, no "code" in the records, a top-level
"code": {commit, dirty} that depended on git history, and versions as installed (Python's
minor version, torch's build label). It is still read and shown.
"""

import json
import re
from collections.abc import Mapping
from typing import Any, TypedDict

import numpy as np

from bigram import artifacts, context
from bigram.artifacts import CHECKPOINTS, VOCAB, is_vocabulary
from bigram.console import PipelineError
from bigram.lineage import STAGES, Link, check_chain, context_of
from bigram.params import is_number

SCHEMA = 2
# The limit on a checkpoint file: W of the largest size, and its metadata.
LIMIT = 4 * context.MAX_WEIGHTS + artifacts.JSON_LIMIT
REBUILD = "run `dvc repro` to rebuild it"


class Previous(TypedDict):
    path: str
    md5: str
    sha256: str


class CodeV1(TypedDict):
    commit: str | None
    dirty: bool


class Meta(TypedDict, total=False):
    """A checkpoint's metadata, once check_meta has accepted it (the fields above)."""

    schema: int  # absent in schema 1
    vocab: list[str]
    lineage: list[Link]
    versions: dict[str, str | None]
    step: int
    loss: float
    ce: float
    reg: float
    previous: Previous | None
    code: CodeV1  # schema 1 only


_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA1 = re.compile(r"[0-9a-f]{40}")
_META_KEYS = {"vocab", "lineage", "versions", "step", "loss", "ce", "reg", "previous"}


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
    chain: list[Any],
    versions: Mapping[str, str | None],
    step: int,
    terms: tuple[float, float, float],
    previous: Previous | None,
) -> Meta:
    """The metadata of the checkpoint saved at `step`, with its (loss, ce, reg)."""
    loss, ce, reg = terms
    return {
        "schema": SCHEMA,
        "vocab": vocab,
        "lineage": chain,
        "versions": dict(versions),
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
