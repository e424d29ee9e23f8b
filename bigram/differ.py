"""Where two versions of an artifact differ, in words: which vocabulary entries, which
pair, which count cell (context, next, split), which rows of W and by how many ulps.
The audit and `bigram check` say this instead of two digests."""

import json

import numpy as np

from bigram import artifacts, checkpoint, lineage
from bigram.artifacts import COUNTS, PAIRS, SPLIT, VOCAB
from bigram.console import PipelineError
from bigram.context import label
from bigram.splitting import SPLITS


def _symbols(vocab: list[str] | None, index: int) -> str:
    return repr(vocab[index]) if vocab is not None and 0 <= index < len(vocab) else str(index)


def _first_cells(a: np.ndarray, b: np.ndarray) -> tuple[int, tuple[int, ...]]:
    differ = a != b
    return int(differ.sum()), tuple(int(i) for i in np.argwhere(differ)[0])


def _vocab(recorded: list[str], found: list[str]) -> str:
    if len(recorded) != len(found):
        return f"{len(recorded)} symbols recorded, {len(found)} re-derived"
    at = [i for i, (a, b) in enumerate(zip(recorded, found)) if a != b]
    shown = at[:6]
    return (
        f"entries {', '.join(map(str, shown))}{' …' if len(at) > 6 else ''}: recorded "
        f"{[recorded[i] for i in shown]}, re-derived {[found[i] for i in shown]}"
    )


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many float32 values lie between a and b, elementwise."""

    def ordered(x: np.ndarray) -> np.ndarray:
        i = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(2**31) - i, i)

    gap: np.ndarray = np.abs(ordered(a) - ordered(b))
    return gap


def weights(recorded: np.ndarray, found: np.ndarray, vocab: list[str], k: int) -> str:
    """The rows of W that differ, the largest difference in ulps and its row."""
    if recorded.shape != found.shape:
        return f"W is {recorded.shape}, re-derived {found.shape}"
    d = ulps(recorded, found)
    rows = np.flatnonzero(d.max(axis=1))
    if not len(rows):
        return "W is bit-identical"
    worst = int(np.argmax(d.max(axis=1)))
    return (
        f"{len(rows)} of {len(d)} rows of W differ, at most {int(d.max()):,} ulps "
        f"(row {label(worst, k, vocab)!r})"
    )


def _meta(recorded: checkpoint.Meta, found: checkpoint.Meta) -> list[str]:
    out = []
    for key in sorted(set(recorded) | set(found)):
        a, b = recorded.get(key), found.get(key)
        if a == b:
            continue
        if key == "lineage" and isinstance(a, list) and isinstance(b, list):
            for ra, rb in zip(a, b):
                fields = [f for f in sorted(set(ra) | set(rb)) if ra.get(f) != rb.get(f)]
                if fields:
                    out.append(f"its {ra.get('stage')} record's {', '.join(fields)}")
        elif key == "vocab":
            shown = [list(v) if isinstance(v, list) else [] for v in (a, b)]
            out.append(f"its vocabulary ({_vocab(*shown)})")
        elif isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    out.append(f"{key}.{k}: recorded {a.get(k)!r}, re-derived {b.get(k)!r}")
        else:
            out.append(f"{key}: recorded {json.dumps(a)[:80]}, re-derived {json.dumps(b)[:80]}")
    return out


def describe(path: str, recorded: bytes, found: bytes, vocab: list[str] | None = None) -> str:
    """Where the recorded bytes of artifact `path` differ from the re-derived ones."""
    try:
        if path == VOCAB:
            a, b = json.loads(recorded), json.loads(found)
            return _vocab(a, b)
        if path in (PAIRS, SPLIT, COUNTS):
            a = artifacts.load_npy(recorded, path)
            b = artifacts.load_npy(found, path)
            if a.shape != b.shape or a.dtype != b.dtype:
                return f"recorded {a.dtype} {a.shape}, re-derived {b.dtype} {b.shape}"
            n, at = _first_cells(a, b)
            if path == PAIRS:

                def pair(x: np.ndarray) -> str:
                    first, second = (_symbols(vocab, int(x[row, at[1]])) for row in (0, 1))
                    return f"({first}, {second})"

                return (
                    f"{n} symbols in {a.shape[1]} pairs differ; first pair {at[1]}: "
                    f"recorded {pair(a)}, re-derived {pair(b)}"
                )
            if path == SPLIT:
                return (
                    f"{n} of {a.size} units are in another split; first unit {at[0]}: recorded "
                    f"{SPLITS[a[at]]}, re-derived {SPLITS[b[at]]}"
                )
            s, row, nxt = at
            k = max(1, round(np.log(a.shape[1]) / np.log(a.shape[2]))) if a.shape[2] > 1 else 1
            ctx = label(row, k, vocab) if vocab and len(vocab) == a.shape[2] else str(row)
            return (
                f"{n} count cells differ; first (context {ctx!r}, next "
                f"{_symbols(vocab, nxt)}, split {SPLITS[s]}): recorded {a[at]}, re-derived {b[at]}"
            )
        if path.endswith(".safetensors"):
            Wa, ma = checkpoint.parse(recorded, path)
            Wb, mb = checkpoint.parse(found, path)
            parts = _meta(ma, mb)
            if Wa.tobytes() != Wb.tobytes():
                k = lineage.context_of(mb["lineage"])
                parts.append(weights(Wa, Wb, mb["vocab"], k))
            return "; ".join(parts) or "the same fields, other bytes"
    except (PipelineError, ValueError, IndexError, TypeError, KeyError):
        pass  # not what its name says: compared as bytes below
    n = min(len(recorded), len(found))
    first = next((i for i in range(n) if recorded[i] != found[i]), n)
    sizes = f"{len(recorded):,} bytes recorded, {len(found):,} re-derived"
    if b"\n" in recorded:
        line = recorded[:first].count(b"\n") + 1
        return f"first difference on line {line} ({sizes})"
    return f"first difference at byte {first:,} ({sizes})"
