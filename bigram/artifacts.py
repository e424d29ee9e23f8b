"""The one place artifacts are named, written and read (the checkpoint format is
bigram.checkpoint's).

Writes go to a temporary file in the same directory and are renamed into place,
so a stage killed mid-write leaves the previous file or none, never a truncated
one. Reads never unpickle: arrays are .npy with allow_pickle=False and the
checkpoint is safetensors, so loading an artifact cannot execute code.
"""

import hashlib
import io
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from bigram import fsio
from bigram.console import PipelineError
from bigram.names import MAX_VOCAB

VOCAB = "data/prepared/vocab.json"
PAIRS = "data/prepared/pairs.npy"
PREPARE_LINEAGE = "data/prepared/lineage.json"
SPLIT = "data/split/split.npy"
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
# read without limit. The names file bound keeps every stage under its 2 GiB budget:
# measured, 48 MiB of two-letter names (16.8M names, 50M pairs) peak at 1.6 GiB in prepare
# and in split (whose permutation is ~30 bytes a pair), and makemore-like names (6.9M)
# at 0.9 and 1.6 GiB. At 256 MiB prepare peaked at 4.7 GiB.
NAMES_LIMIT = 48 * 2**20
JSON_LIMIT = 4 * 2**20
# The largest .npy file: the pairs of a names file at its size bound (uint16 indices).
NPY_LIMIT = 8 * NAMES_LIMIT + 2**20
REBUILD = "run `dvc repro` to rebuild it"


def json_bytes(obj: object) -> bytes:
    """A JSON artifact's bytes: the same object always gives the same bytes."""
    # UTF-8, not \u escapes: vocab.json is read by people (`"Á"`, not `"\u00c1"`).
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False)
    return (text + "\n").encode()


def npy_bytes(array: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, array, allow_pickle=False)
    return f.getvalue()


def write_json(path: str, obj: object) -> None:
    write_bytes(path, json_bytes(obj))


def write_npy(path: str, array: np.ndarray) -> None:
    write_bytes(path, npy_bytes(array))


def write_text(path: str, text: str) -> None:
    with fsio.atomic(path) as f:
        f.write(text)


def write_bytes(path: str, data: bytes) -> None:
    with fsio.atomic(path, binary=True) as f:
        f.write(data)


def load_npy(data: bytes, path: str) -> np.ndarray:
    """The array in the bytes of a .npy file, after its header is checked against their
    size: a forged shape cannot make the read allocate terabytes."""
    bad = PipelineError(f"{path} is not a valid .npy array; {REBUILD}")
    f = io.BytesIO(data)
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
    if dtype.hasobject or fortran or len(data) - f.tell() != count * dtype.itemsize:
        raise bad
    # Read-only, without a copy: no stage writes into its inputs.
    return np.frombuffer(data, dtype=dtype, count=count, offset=f.tell()).reshape(shape)


def read_bytes(path: str, limit: int = NPY_LIMIT) -> bytes:
    """An artifact's bytes: a stage parses these and digests these, never a second read."""
    return fsio.read_bounded(path, limit, REBUILD)


def read_npy(path: str) -> np.ndarray:
    return load_npy(read_bytes(path), path)


def parse_json(data: bytes, path: str, hint: str = REBUILD) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        raise PipelineError(f"{path} is not valid JSON; {hint}") from None


def read_json(path: str) -> object:
    return parse_json(read_bytes(path, JSON_LIMIT), path)


def is_vocabulary(vocab: object) -> bool:
    """A list of 2 to MAX_VOCAB distinct characters, '.' first."""
    return (
        isinstance(vocab, list)
        and 2 <= len(vocab) <= MAX_VOCAB
        and vocab[0] == "."
        and all(isinstance(s, str) and len(s) == 1 for s in vocab)
        and len(set(vocab)) == len(vocab)
    )


def parse_vocab(data: bytes, path: str = VOCAB) -> list[str]:
    vocab = parse_json(data, path)
    if not is_vocabulary(vocab):
        raise PipelineError(
            f"{path} is not a vocabulary (a JSON list of distinct characters, '.' first); {REBUILD}"
        )
    return vocab  # type: ignore[return-value]  # is_vocabulary checked it


def read_vocab(path: str = VOCAB) -> list[str]:
    return parse_vocab(read_bytes(path, JSON_LIMIT), path)


def check_pairs(pairs: np.ndarray, V: int) -> np.ndarray:
    if (
        pairs.ndim != 2
        or pairs.shape[0] != 2
        or pairs.dtype.kind != "u"
        or (pairs.size and int(pairs.max()) >= V)
    ):
        raise PipelineError(f"{PAIRS} does not match {VOCAB}; run `dvc repro` to rebuild both")
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
        raise PipelineError(f"{source} has negative counts; run `dvc repro` to rebuild it")
    # Counts are summed in float64: past 2**53 pairs they would no longer be exact
    # (and int64 sums could wrap), so such a file is forged or corrupt.
    if counts.sum(dtype=np.float64) > 2**53:
        raise PipelineError(f"{source} counts more than 2**53 pairs; run `dvc repro` to rebuild it")
    return counts


def read_counts(V: int, rows: int) -> np.ndarray:
    return check_counts(read_npy(COUNTS), V, rows)


def _missing(path: str) -> bool:
    """No such file (not: a name too long, a loop, no permission: read_bounded says those)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        pass
    return False


def read_names_file(path: str) -> bytes:
    """The names file's bytes, refusing one that resolves outside the project (a symbolic
    link committed to a repository must not make `dvc repro` read another file of yours)."""
    if _missing(path):
        # Most often: copied into the project but not tracked, so a queued experiment (which
        # runs in a copy of what git and DVC track) or a clone does not have it.
        raise PipelineError(
            f"{path}: no such file; if it is your names list, put it inside the project and "
            f"track it with `dvc add {path}` (queued experiments and clones see only what git "
            "or DVC tracks), or point data.names in params.yaml at the right file"
        )
    if not fsio.within_project(path):
        raise PipelineError(
            f"{path} is a symbolic link to a file outside the project, which the pipeline does "
            "not read: copy the file into data/ and track it with `dvc add` "
            "(docs/your-own-names.md)"
        )
    return fsio.read_bounded(
        path, NAMES_LIMIT, "point data.names in params.yaml at a names file (one name per line)"
    )


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
