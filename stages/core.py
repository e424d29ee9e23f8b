"""The maths of the pipeline as pure numpy functions, testable without DVC.

Everything downstream of the split works on V×V bigram count matrices rather
than on the N pairs: the cross-entropy over N pairs is a count-weighted sum
over the V×V matrix, so evaluating and comparing cost O(V²) whatever N is.
"""
import re

import numpy as np

from stages.cli import PipelineError

BOUNDARY = "."
SPLITS = ("train", "dev", "test")
# Control characters (tabs, NUL, ...) inside a name are almost always a TSV or
# a binary file read by mistake, not a name.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _line_of(text, index):
    return text.count("\n", 0, index) + 1


def parse_names(data, source):
    """Names from the bytes of a names file: one per line, UTF-8, surrounding
    whitespace and blank lines ignored, CRLF (or CR) line ends and a leading BOM
    accepted."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise PipelineError(f"{source} line {line}: byte 0x{data[e.start]:02x} is not UTF-8; "
                            "save the file as UTF-8") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    stripped = "\n".join(line.strip() for line in text.split("\n"))
    dot = stripped.find(BOUNDARY)
    if dot >= 0:
        line = _line_of(stripped, dot)
        raise PipelineError(f"{source} line {line}: {stripped.split(chr(10))[line - 1]!r} contains "
                            f"'{BOUNDARY}', the name boundary symbol; remove it from the name")
    control = _CONTROL.search(stripped)
    if control:
        raise PipelineError(f"{source} line {_line_of(stripped, control.start())}: control "
                            f"character U+{ord(control.group()):04X} inside a name; put one "
                            "plain name per line (is this a TSV or binary file?)")
    names = [name for name in stripped.split("\n") if name]
    if not names:
        raise PipelineError(f"{source} has no names (empty or only blank lines); "
                            "put one name per line")
    return names


def index_dtype(n):
    """The smallest unsigned integer type that holds 0..n-1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n - 1 <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def encode(names):
    """Vocabulary ('.' first, then the sorted characters seen) and the (2, N)
    array of bigram pairs of every name wrapped in '.'."""
    # ".emma.olivia." yields exactly the pairs of ".emma." then ".olivia.": the
    # boundary closing one name opens the next, so one vectorised pass suffices.
    text = BOUNDARY + BOUNDARY.join(names) + BOUNDARY
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    seen = np.zeros(0x110000, dtype=bool)
    seen[codepoints] = True
    symbols = np.flatnonzero(seen)
    symbols = np.concatenate([[ord(BOUNDARY)], symbols[symbols != ord(BOUNDARY)]])
    lookup = np.zeros(0x110000, dtype=index_dtype(len(symbols)))
    lookup[symbols] = np.arange(len(symbols))
    codes = lookup[codepoints]
    vocab = [chr(c) for c in symbols]
    return vocab, np.stack([codes[:-1], codes[1:]])


def name_of_pair(xs):
    """Index of the name each pair belongs to: a name's first pair starts at '.'."""
    return np.cumsum(xs == 0) - 1


def split_sizes(n, train, dev):
    """Units in train, dev and test: int(train·n), int(dev·n) and the rest, as the notebook."""
    n_train, n_dev = int(train * n), int(dev * n)
    return n_train, n_dev, n - n_train - n_dev


def assign_split(perm, train, dev):
    """Split id (0 train, 1 dev, 2 test) of each of len(perm) units: the first
    n_train of the permutation train, the next n_dev dev, the rest test."""
    n_train, n_dev, _ = split_sizes(len(perm), train, dev)
    assign = np.full(len(perm), 2, dtype=np.uint8)
    assign[perm[:n_train]] = 0
    assign[perm[n_train:n_train + n_dev]] = 1
    return assign


def split_counts(pairs, assign, V, chunk=1 << 22):
    """(3, V, V) bigram counts of the train, dev and test pairs."""
    # In chunks: int64 copies of all N pairs would be the stage's peak memory.
    counts = np.zeros(3 * V * V, dtype=np.int64)
    for i in range(0, pairs.shape[1], chunk):
        xs, ys = pairs[:, i:i + chunk].astype(np.int64)
        flat = assign[i:i + chunk].astype(np.int64) * (V * V) + xs * V + ys
        counts += np.bincount(flat, minlength=3 * V * V)
    return counts.reshape(3, V, V)


def log_softmax(W):
    z = W.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def nll(counts, logp):
    """Mean negative log-likelihood of the pairs counted in `counts`."""
    return float(-(counts * logp).sum() / counts.sum())


def split_nlls(counts, logp):
    """Mean NLL on each split of the (3, V, V) split counts, and on all pairs."""
    out = {name: nll(c, logp) for name, c in zip(SPLITS, counts)}
    out["all"] = nll(counts.sum(axis=0), logp)
    return out


def count_probs(counts, smoothing):
    smoothed = counts + smoothing
    return smoothed / smoothed.sum(axis=1, keepdims=True)


def mean_kl(P, logQ):
    """Mean over rows of KL(P_row ‖ Q_row)."""
    return float((P * (np.log(P) - logQ)).sum(axis=1).mean())


def sample(logp, count, seed, max_length):
    """`count` index sequences drawn from the bigram model, each from '.' until
    '.' (or max_length symbols); numpy's PCG64 under `seed`, so reruns agree."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(np.exp(logp), axis=1)
    out = []
    for _ in range(count):
        ix, seq = 0, []
        while len(seq) < max_length:
            row = cdf[ix]
            ix = min(int(np.searchsorted(row, rng.random() * row[-1], side="right")), len(row) - 1)
            if ix == 0:
                break
            seq.append(ix)
        out.append(seq)
    return out
