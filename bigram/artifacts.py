"""The one place artifacts are named, written and read (checkpoints included).

Writes go to a temporary file in the same directory and are renamed into place,
so a stage killed mid-write leaves the previous file or none, never a truncated
one. Reads never unpickle: arrays are .npy with allow_pickle=False and the
checkpoint is safetensors, so loading an artifact cannot execute code.
"""

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np

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


@contextmanager
def atomic(path: str | Path, binary: bool = False) -> Iterator[IO]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A run killed mid-write leaves its temporary file behind; the next one clears it.
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    kwargs = {} if binary else {"encoding": "utf-8", "newline": "\n"}
    try:
        with open(tmp, "xb" if binary else "x", **kwargs) as f:
            yield f
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str, obj: object) -> None:
    with atomic(path) as f:
        json.dump(obj, f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")


def write_npy(path: str, array: np.ndarray) -> None:
    with atomic(path, binary=True) as f:
        np.save(f, array, allow_pickle=False)


def write_text(path: str, text: str) -> None:
    with atomic(path) as f:
        f.write(text)


def _rerun_hint(path: str) -> str:
    return f"{path} is missing or unreadable; run `dvc repro` to rebuild it"


def read_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        raise PipelineError(_rerun_hint(path)) from None


def read_json(path: str) -> object:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        raise PipelineError(_rerun_hint(path)) from None


def read_vocab(path: str = VOCAB) -> list[str]:
    vocab = read_json(path)
    if (
        not isinstance(vocab, list)
        or not vocab
        or vocab[0] != "."
        or not all(isinstance(s, str) and len(s) == 1 for s in vocab)
        or len(set(vocab)) != len(vocab)
    ):
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


def read_counts(V: int) -> np.ndarray:
    counts = read_npy(COUNTS)
    if counts.shape != (3, V, V) or counts.dtype != np.int64 or (counts < 0).any():
        raise PipelineError(
            f"{COUNTS} does not match {VOCAB}; run `dvc repro -f split` to rebuild it"
        )
    return counts


def read_names_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise PipelineError(
            f"{path}: no such file; point data.names in params.yaml "
            "at a names file (one name per line)"
        ) from None
    except IsADirectoryError:
        raise PipelineError(
            f"{path} is a directory; point data.names in params.yaml "
            "at a names file (one name per line)"
        ) from None
    except OSError as e:
        raise PipelineError(
            f"{path} cannot be read ({e.strerror}); check its permissions"
        ) from None


def checkpoint_bytes(W: np.ndarray, meta: dict) -> bytes:
    from safetensors.numpy import save

    # One metadata key: safetensors writes several keys in hash order, which
    # would make the file's bytes differ between identical runs.
    return save(
        {"W": np.ascontiguousarray(W, dtype=np.float32)},
        metadata={"pipeline": json.dumps(meta, sort_keys=True, allow_nan=False)},
    )


def write_bytes(path: str, data: bytes) -> None:
    with atomic(path, binary=True) as f:
        f.write(data)


def _is_meta(meta: object) -> bool:
    """The metadata train writes: what the stages and stages.lineage rely on."""
    if not isinstance(meta, dict) or not isinstance(meta.get("vocab"), list):
        return False
    chain, previous, code = meta.get("lineage"), meta.get("previous"), meta.get("code")
    links = (
        isinstance(chain, list)
        and chain
        and all(
            isinstance(r, dict)
            and isinstance(r.get("stage"), str)
            and all(isinstance(r.get(k), dict) for k in ("params", "inputs", "outputs"))
            for r in chain
        )
    )
    train = links and chain[-1]["stage"] == "train" and chain[-1]["params"].get("train")
    return bool(
        links
        and isinstance(train, dict)
        and {"seed", "lr", "reg", "steps"} <= train.keys()
        and isinstance(meta.get("step"), int)
        and not isinstance(meta["step"], bool)
        and meta["step"] >= 0
        and all(is_number(meta.get(k)) for k in ("loss", "ce", "reg"))
        and (previous is None or isinstance(previous, dict) and {"path", "md5"} <= previous.keys())
        and isinstance(code, dict)
        and {"commit", "dirty"} <= code.keys()
        and isinstance(meta.get("versions"), dict)
    )


def parse_checkpoint(data: bytes, path: str) -> tuple[np.ndarray, dict]:
    """(W, meta) from a checkpoint's bytes, after checking the metadata's shape and
    that W is a finite V×V matrix for meta['vocab']. Never unpickles: safetensors
    is a JSON header and raw little-endian numbers."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    bad = (
        f"{path} is not a checkpoint of this pipeline (%s); run `dvc repro -f train` to rebuild it"
    )
    try:
        size = int.from_bytes(data[:8], "little")
        meta = json.loads(json.loads(data[8 : 8 + size])["__metadata__"]["pipeline"])
        W = load(data)["W"]
    except (SafetensorError, ValueError, KeyError, TypeError) as e:
        raise PipelineError(bad % f"{type(e).__name__}: {e}".splitlines()[0]) from None
    if not _is_meta(meta):
        raise PipelineError(bad % "its metadata lacks the lineage this pipeline writes")
    vocab = meta["vocab"]
    if W.dtype != np.float32 or W.shape != (len(vocab), len(vocab)):
        raise PipelineError(bad % "W does not match its vocabulary")
    if not np.isfinite(W).all():
        raise PipelineError(bad % "W has NaN or infinite entries")
    return W, meta


def read_checkpoint(path: str = MODEL, vocab: list[str] | None = None) -> tuple[np.ndarray, dict]:
    """(W, meta) of a checkpoint file; with `vocab`, refusing one trained on another
    vocabulary."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise PipelineError(_rerun_hint(path)) from None
    W, meta = parse_checkpoint(data, path)
    if vocab is not None and meta["vocab"] != vocab:
        raise PipelineError(
            f"{path} was trained on another vocabulary than {VOCAB}; run `dvc repro` to retrain it"
        )
    return W, meta


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5(path: str) -> str:
    """The file's md5, as dvc.lock records it (an identity check, not a security one)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
