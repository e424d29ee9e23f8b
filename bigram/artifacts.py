"""The one place artifacts are named, written and read (checkpoints included).

Writes go to a temporary file in the same directory and are renamed into place,
so a stage killed mid-write leaves the previous file or none, never a truncated
one. Reads never unpickle: arrays are .npy with allow_pickle=False and the
checkpoint is safetensors, so loading an artifact cannot execute code.
"""

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import IO

import numpy as np

from bigram import context, fsio, params
from bigram.console import PipelineError
from bigram.params import is_number

VOCAB = "data/prepared/vocab.json"
PAIRS = "data/prepared/pairs.npy"
PREPARE_LINEAGE = "data/prepared/lineage.json"
SPLIT = "data/split/split.npy"
# counts.npy is (3, V, V): the bigram counts of these splits, in this order.
SPLITS = ("train", "dev", "test")
COUNTS = "data/split/counts.npy"
SPLIT_LINEAGE = "data/split/lineage.json"
MODEL = "models/model.safetensors"
CHECKPOINTS = "models/checkpoints"
EVAL_STEPS = "plots/eval_steps.csv"
LOSS_CURVE = "plots/train_loss.csv"
BIGRAMS = "plots/bigrams.csv"
SAMPLES = "data/samples.txt"


def metrics_path(stage: str) -> str:
    return f"metrics/{stage}.json"


def checkpoint_path(step: int) -> str:
    return f"{CHECKPOINTS}/step_{step:06d}.safetensors"


def checkpoint_paths() -> list[str]:
    """The run's intermediate checkpoints, in step order. Other files a user puts
    there (step_best.safetensors, a copy) are neither scored nor removed."""
    found = [
        p
        for p in Path(CHECKPOINTS).glob("step_*.safetensors")
        if re.fullmatch(r"step_\d{6,}\.safetensors", p.name)
    ]
    return sorted((str(p) for p in found), key=lambda p: int(Path(p).stem[5:]))


# Upper bounds on what a stage reads, so a wrong path or a forged file cannot make it
# read without limit. The names file bound is about 30 million names.
NAMES_LIMIT = 256 * 2**20
JSON_LIMIT = 4 * 2**20
MAX_VOCAB = 4096  # a 4096×4096 W keeps every stage under its 2 GiB budget
CHECKPOINT_LIMIT = 4 * context.MAX_WEIGHTS + JSON_LIMIT
REBUILD = "run `dvc repro` to rebuild it"


def write_json(path: str, obj: object) -> None:
    with fsio.atomic(path) as f:
        json.dump(obj, f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")


def write_npy(path: str, array: np.ndarray) -> None:
    with fsio.atomic(path, binary=True) as f:
        np.save(f, array, allow_pickle=False)


def write_text(path: str, text: str) -> None:
    with fsio.atomic(path) as f:
        f.write(text)


def write_bytes(path: str, data: bytes) -> None:
    with fsio.atomic(path, binary=True) as f:
        f.write(data)


def load_npy(f: IO[bytes], size: int, path: str) -> np.ndarray:
    """The array in .npy file `f` of `size` bytes, read only after its header is checked
    against that size: a forged shape cannot make the read allocate terabytes."""
    bad = PipelineError(f"{path} is not a valid .npy array; {REBUILD}")
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    try:
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = readers[version](f)
    except (ValueError, EOFError, SyntaxError, TypeError, KeyError):
        raise bad from None
    count = math.prod(shape)
    if dtype.hasobject or fortran or size - f.tell() != count * dtype.itemsize:
        raise bad
    # Read-only, without a copy: no stage writes into its inputs.
    return np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype).reshape(shape)


def read_npy(path: str) -> np.ndarray:
    with fsio.open_regular(path, REBUILD) as f:
        return load_npy(f, os.fstat(f.fileno()).st_size, path)


def parse_json(data: bytes, path: str, hint: str = REBUILD) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        raise PipelineError(f"{path} is not valid JSON; {hint}") from None


def read_json(path: str) -> object:
    return parse_json(fsio.read_bounded(path, JSON_LIMIT, REBUILD), path)


def is_vocabulary(vocab: object) -> bool:
    """A list of 2 to MAX_VOCAB distinct characters, '.' first."""
    return (
        isinstance(vocab, list)
        and 2 <= len(vocab) <= MAX_VOCAB
        and vocab[0] == "."
        and all(isinstance(s, str) and len(s) == 1 for s in vocab)
        and len(set(vocab)) == len(vocab)
    )


def read_vocab(path: str = VOCAB) -> list[str]:
    vocab = read_json(path)
    if not is_vocabulary(vocab):
        raise PipelineError(
            f"{path} is not a vocabulary (a JSON list of distinct characters, "
            "'.' first); run `dvc repro -f prepare` to rebuild it"
        )
    return vocab


def read_pairs(V: int) -> np.ndarray:
    pairs = read_npy(PAIRS)
    if (
        pairs.ndim != 2
        or pairs.shape[0] != 2
        or pairs.dtype.kind != "u"
        or (pairs.size and int(pairs.max()) >= V)
    ):
        raise PipelineError(
            f"{PAIRS} does not match {VOCAB}; run `dvc repro -f prepare` to rebuild both"
        )
    return pairs


def check_counts(counts: np.ndarray, V: int, rows: int, source: str = COUNTS) -> np.ndarray:
    """The (3, rows, V) split counts (rows = V^model.context contexts), after refusing
    any other shape, type or total."""
    if counts.shape != (3, rows, V) or counts.dtype != np.int64:
        # The vocabulary, the counts and W's contexts come from three stages: whichever
        # is stale, `dvc repro` rebuilds it.
        raise PipelineError(
            f"{source} holds {counts.dtype} {tuple(counts.shape)}, not the int64 "
            f"(3, {rows}, {V}) counts that {VOCAB} and the model's context need; "
            "run `dvc repro` to rebuild what is stale"
        )
    if (counts < 0).any():
        raise PipelineError(f"{source} has negative counts; run `dvc repro -f split`")
    # Counts are summed in float64: past 2**53 pairs they would no longer be exact
    # (and int64 sums could wrap), so such a file is forged or corrupt.
    if counts.sum(dtype=np.float64) > 2**53:
        raise PipelineError(f"{source} counts more than 2**53 pairs; run `dvc repro -f split`")
    return counts


def read_counts(V: int, rows: int) -> np.ndarray:
    return check_counts(read_npy(COUNTS), V, rows)


def read_names_file(path: str) -> bytes:
    return fsio.read_bounded(
        path, NAMES_LIMIT, "point data.names in params.yaml at a names file (one name per line)"
    )


def checkpoint_bytes(W: np.ndarray, meta: dict) -> bytes:
    from safetensors.numpy import save

    # One metadata key: safetensors writes several keys in hash order, which
    # would make the file's bytes differ between identical runs.
    return save(
        {"W": np.ascontiguousarray(W, dtype=np.float32)},
        metadata={"pipeline": json.dumps(meta, sort_keys=True, allow_nan=False)},
    )


# --- lineage records and checkpoint metadata: untrusted until checked ------------

STAGE_SECTIONS = {"prepare": ("data",), "split": ("split", "model"), "train": ("train",)}
_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_PATH_LIMIT = 4096


def _is_path(p: object) -> bool:
    return isinstance(p, str) and 0 < len(p) <= _PATH_LIMIT and "\0" not in p


def check_link(link: object, source: str) -> str | None:
    """What is wrong with one lineage record (None if nothing): its shape, its
    digests, and its params, checked by the same rules as params.yaml."""
    if not isinstance(link, dict) or set(link) != {
        "stage",
        "params",
        "inputs",
        "outputs",
        "sha256",
    }:
        return "a record is not {stage, params, inputs, outputs, sha256}"
    stage = link["stage"]
    if not isinstance(stage, str) or stage not in STAGE_SECTIONS:
        return f"unknown stage {str(stage)[:40]!r}"
    recorded = link["params"]
    if not isinstance(recorded, dict) or set(recorded) != set(STAGE_SECTIONS[stage]):
        return f"the {stage} params are not the sections {', '.join(STAGE_SECTIONS[stage])}"
    for section, values in recorded.items():
        try:
            params.section(section, values, source)
        except PipelineError as e:
            return str(e).removeprefix(f"{source}: ")
    for kind in ("inputs", "outputs"):
        files = link[kind]
        if not isinstance(files, dict) or not all(
            _is_path(k) and isinstance(v, str) and _MD5.fullmatch(v) for k, v in files.items()
        ):
            return f"the {stage} {kind} are not paths with md5 digests"
    names = recorded.get("data", {}).get("names")
    if stage == "prepare" and params.outside_project(names):
        return "the prepare record names a names file outside the project"
    reads, writes = {
        "prepare": ([names], [VOCAB, PAIRS]),
        "split": ([VOCAB, PAIRS], [SPLIT, COUNTS]),
        "train": ([VOCAB, COUNTS], []),
    }[stage]
    if set(link["inputs"]) != set(reads) or set(link["outputs"]) != set(writes):
        return f"the {stage} record does not name the files that stage reads and writes"
    sha256 = link["sha256"]
    if not (
        isinstance(sha256, dict)
        and set(sha256) == set(link["inputs"]) | set(link["outputs"])
        and all(isinstance(v, str) and _SHA256.fullmatch(v) for v in sha256.values())
    ):
        return f"the {stage} sha256 digests are not those of its inputs and outputs"
    return None


def check_chain(chain: object, stages: tuple[str, ...], source: str) -> str | None:
    """What is wrong with a lineage chain that should hold `stages`, in order."""
    if not isinstance(chain, list) or len(chain) != len(stages):
        return f"not a list of the {', '.join(stages)} records"
    for link, stage in zip(chain, stages):
        problem = check_link(link, source)
        if problem:
            return problem
        if link["stage"] != stage:
            return f"the records are not {', '.join(stages)}, in order"
    return None


def check_meta(meta: object, source: str) -> str | None:
    """What is wrong with a checkpoint's metadata (None if nothing). Every field is
    checked before any is used: a checkpoint is data from anywhere."""
    keys = {"vocab", "lineage", "code", "versions", "step", "loss", "ce", "reg", "previous"}
    if not isinstance(meta, dict) or set(meta) != keys:
        return "its metadata lacks the lineage this pipeline writes"
    if not is_vocabulary(meta["vocab"]):
        return "its vocabulary is not a list of distinct characters, '.' first"
    problem = check_chain(meta["lineage"], tuple(STAGE_SECTIONS), source)
    if problem:
        return f"lineage: {problem}"
    code = meta["code"]
    if not (
        isinstance(code, dict)
        and {"commit", "dirty"} <= set(code) <= {"commit", "dirty", "reason"}
        and (
            code["commit"] is None
            or isinstance(code["commit"], str)
            and _COMMIT.fullmatch(code["commit"])
        )
        and (code["dirty"] is None or isinstance(code["dirty"], bool))
        and (code["commit"] is None) == (code["dirty"] is None)
        and (isinstance(code.get("reason", ""), str) and len(code.get("reason", "")) <= 500)
    ):
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


def context_of(chain: list[dict]) -> int:
    """model.context as the split stage recorded it in a checked lineage chain (a
    checkpoint's meta["lineage"], or data/split/lineage.json)."""
    split = next(link for link in chain if link["stage"] == "split")
    return split["params"]["model"]["context"]


def parse_checkpoint(data: bytes, path: str) -> tuple[np.ndarray, dict]:
    """(W, meta) from a checkpoint's bytes, after checking all of its metadata and
    that W is a finite V^k×V matrix for meta['vocab'] and its recorded model.context k.
    Never unpickles: safetensors is a JSON header and raw little-endian numbers."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    bad = (
        f"{path} is not a checkpoint of this pipeline (%s); run `dvc repro -f train` to rebuild it"
    )
    try:
        size = int.from_bytes(data[:8], "little")
        if size > JSON_LIMIT:
            raise ValueError(f"a header of {size:,} bytes")
        meta = json.loads(json.loads(data[8 : 8 + size])["__metadata__"]["pipeline"])
        W = load(data)["W"]
    except (SafetensorError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise PipelineError(bad % f"{type(e).__name__}: {e}".splitlines()[0][:200]) from None
    problem = check_meta(meta, path)
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


def read_checkpoint(path: str = MODEL, vocab: list[str] | None = None) -> tuple[np.ndarray, dict]:
    """(W, meta) of a checkpoint file; with `vocab`, refusing one trained on another
    vocabulary."""
    data = fsio.read_bounded(path, CHECKPOINT_LIMIT, "run `dvc repro -f train` to rebuild it")
    W, meta = parse_checkpoint(data, path)
    if vocab is not None and meta["vocab"] != vocab:
        raise PipelineError(
            f"{path} was trained on another vocabulary than {VOCAB}; run `dvc repro` to retrain it"
        )
    return W, meta


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digests(path: str) -> tuple[str, str]:
    """The file's md5 (as dvc.lock records it: an identity, not a security check) and
    sha256 (for provenance others verify); in a stage, of the content just written."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(fsio.current(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha256.update(block)
    return md5.hexdigest(), sha256.hexdigest()


def md5(path: str) -> str:
    """The file's md5, as dvc.lock records it."""
    return digests(path)[0]
