"""Seeded names drawn from a model P(next | context): all names at once, in numpy, and
bit for bit the names of drawing them one symbol at a time."""

import bisect
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from bigram.names import index_dtype


class Drawn(NamedTuple):
    """Sampled names as index arrays: every name's symbols, one name after another,
    and each name's length."""

    symbols: np.ndarray
    lengths: np.ndarray


# Stream positions per segment, walked side by side; the steps each segment's walk takes
# before it, from the start of a name, to meet the names drawn before it; and the stream
# positions drawn at a time at most.
_SEGMENT = 256
_LEAD = 64
_CHUNK = 2**22


def draw(
    P: np.ndarray,
    count: int,
    seed: int,
    max_length: int,
    progress: Callable[[int], None] | None = None,
) -> Drawn:
    """`count` names drawn from the model P(next | context) of shape (V^k, V), each
    from k boundaries '.' until '.' (or max_length symbols, 1 or more), with numpy's
    PCG64 under `seed` (integer arithmetic, the same on every machine).

    Names are drawn one after another from one stream of uniforms, one per symbol or
    final '.', so the first k names of a larger count are the names of count=k. The
    stream is cut into segments walked side by side, each walk starting a few dozen
    positions before its segment as if a name started there: names forget where they
    started, so by its segment the walk has almost always met the names drawn before
    (its context and name length there are theirs). Where it has not, the segment is
    drawn again from where the one before it ended: side by side while such segments
    are few, else one symbol at a time. So the names are bit for bit those of drawing
    one name after another (the tests keep that loop as the reference). Time and memory
    grow with count × max_length (the sample stage bounds it: bigram.params).
    progress(done) is called after each chunk of the stream."""
    rng = np.random.default_rng(seed)
    choose = _Chooser(np.cumsum(P, axis=1))
    symbols, lengths = [], []
    state = (0, 0)  # the context and the name's length where the next chunk begins
    done = used = carried = 0  # carried: symbols of a name running on into the next chunk
    size = 16 * count + 4096
    while done < count:
        if progress is not None:
            progress(done)
        size = -(-min(size, _CHUNK) // _SEGMENT) * _SEGMENT  # whole segments
        picked, ends, state = _walk(choose, rng.random(size), state, max_length)
        at = np.flatnonzero(ends)[: count - done]
        if done + at.size == count:  # the last name ends in this chunk
            picked = picked[: at[-1] + 1]
        drawn = picked != 0  # a symbol, not a final '.'
        running = carried + np.cumsum(drawn)  # symbols since the last name before the chunk
        through = running[at]
        symbols.append(picked[drawn])
        lengths.append(np.diff(through, prepend=0))
        carried = int(running[-1]) - (int(through[-1]) if at.size else 0)
        done += at.size
        used += size
        size = (count - done) * used // max(done, 1) + _SEGMENT
    if progress is not None:
        progress(count)
    return Drawn(np.concatenate(symbols), np.concatenate(lengths).astype(np.int64))


# Rows of at most this many symbols are compared whole when draws spread over many rows.
_DENSE = 128


class _Chooser:
    """The symbol a uniform u picks in its context's row of the cumulative P:
    searchsorted(cdf[context], u * cdf[context, -1], side='right'), the reference
    loop's exact float comparisons, for one draw or for many (context, u) at once."""

    def __init__(self, cdf: np.ndarray) -> None:
        self.cdf = cdf
        self.rows, self.V = cdf.shape
        self.totals = cdf[:, -1].copy()
        self._ranks: tuple[np.ndarray, np.ndarray, int] | None = None
        self._rows: dict[int, list[float]] = {}

    def row(self, context: int) -> list[float]:
        """The context's row as Python floats, for drawing one symbol at a time."""
        row = self._rows.get(context)
        if row is None:
            row = self._rows[context] = self.cdf[context].tolist()
        return row

    def many(self, contexts: np.ndarray, u: np.ndarray) -> np.ndarray:
        x = u * self.totals[contexts]
        ix = self._grouped(contexts, x)
        if ix is None:
            ix = self._dense(contexts, x) if self.V <= _DENSE else self._ranked(contexts, x)
        chosen: np.ndarray = np.minimum(ix, self.V - 1)
        return chosen

    def _grouped(self, contexts: np.ndarray, x: np.ndarray) -> np.ndarray | None:
        # One searchsorted per context, in its own small row, over its draws; None when
        # the contexts do not sort as 16-bit keys (a radix sort) or have few draws each.
        if self.rows > 2**16:
            return None
        counts = np.bincount(contexts, minlength=self.rows)
        present = np.flatnonzero(counts)
        if present.size > max(64, contexts.size // 32):
            return None
        order = np.argsort(contexts.astype(np.uint16), kind="stable")
        xs = x[order]
        found = np.empty(contexts.size, dtype=np.int64)
        ends = np.cumsum(counts[present]).tolist()
        for context, a, b in zip(present.tolist(), [0, *ends], ends):
            found[a:b] = np.searchsorted(self.cdf[context], xs[a:b], side="right")
        ix = np.empty_like(found)
        ix[order] = found
        return ix

    def _dense(self, contexts: np.ndarray, x: np.ndarray) -> np.ndarray:
        # Every value of each draw's row compared with its x: a row's values are sorted, so
        # how many are <= x is searchsorted's answer. Cheaper than a search while rows are
        # short (V compares against the ranked search's cache misses).
        counted: np.ndarray = np.count_nonzero(self.cdf[contexts] <= x[:, None], axis=1)
        return counted

    def _ranked(self, contexts: np.ndarray, x: np.ndarray) -> np.ndarray:
        # Each cdf value replaced by its rank among all of them makes (context, rank)
        # one sorted int64 key: one searchsorted over every row then counts the values
        # <= x in the context's row, with the same float comparisons as in the row.
        if self._ranks is None:
            values = np.unique(self.cdf)
            span = values.size + 1
            rows = np.arange(self.rows, dtype=np.int64)[:, None] * span
            self._ranks = values, (rows + np.searchsorted(values, self.cdf)).ravel(), span
        values, keys, span = self._ranks
        rank = np.searchsorted(values, x, side="right")
        counted: np.ndarray = np.searchsorted(keys, contexts * span + rank) - contexts * self.V
        return counted


def _walk(
    choose: _Chooser, u: np.ndarray, state: tuple[int, int], max_length: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The names drawn from the stream u (whole segments), the first position in
    `state` (context, length of the name so far): the symbol drawn at each position (0
    for a final '.'), whether a name ends there, and the state after the last."""
    S, lead = _SEGMENT, _LEAD
    segments = u.size // S
    first = np.zeros(1, dtype=np.int64)
    picked, ends, begun, left = _side_by_side(
        choose, np.concatenate([np.zeros(lead), u]), np.arange(segments) * S, lead,
        (first, np.array([state[0]]), np.array([state[1]])), max_length,
    )  # fmt: skip
    # Each segment must begin where the one before it ended. Those that did not are walked
    # again from there, side by side while few are (a segment after one walked again may
    # need it too), the rest one at a time.
    wrong = _wrong(begun, left)
    while 0 < wrong.size <= segments // 4:
        again = _side_by_side(
            choose, u, wrong * S, 0, (np.arange(wrong.size), *left[:, wrong - 1]), max_length
        )
        picked[wrong], ends[wrong], begun[:, wrong], left[:, wrong] = again
        fewer = _wrong(begun, left)
        if fewer.size > wrong.size // 2:
            break
        wrong = fewer
    begins, lefts = begun.T.tolist(), left.T.tolist()
    last = lefts[0]
    for i in range(1, segments):
        if begins[i] != last:
            picked[i], ends[i], last = _one_at_a_time(
                choose, u[i * S : (i + 1) * S], last, max_length
            )
        else:
            last = lefts[i]
    return picked.ravel(), ends.ravel(), (last[0], last[1])


def _wrong(begun: np.ndarray, left: np.ndarray) -> np.ndarray:
    """The segments (after the first) that did not begin where the one before ended."""
    return 1 + np.flatnonzero((begun[:, 1:] != left[:, :-1]).any(axis=0))


def _side_by_side(
    choose: _Chooser,
    padded: np.ndarray,
    at: np.ndarray,
    lead: int,
    given: tuple[np.ndarray, np.ndarray, np.ndarray],
    max_length: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Walks of `lead` + _SEGMENT steps side by side, walk j reading padded from at[j], each
    from a name's start, except that the walks given[0] are put in the states given[1:]
    (contexts, lengths) where their segments begin: each segment's symbols (0 for a final
    '.'), where names end, and the (context, length) where each segment begins and ends."""
    S = _SEGMENT
    contexts = np.zeros(at.size, dtype=np.int64)
    length = np.zeros(at.size, dtype=np.int64)
    picked = np.empty((at.size, S), dtype=index_dtype(choose.V))
    ends = np.empty((at.size, S), dtype=bool)
    begun = np.empty((2, at.size), dtype=np.int64)
    for t in range(lead + S):
        if t == lead:
            who, contexts[who], length[who] = given
            begun[:] = contexts, length
        ix = choose.many(contexts, padded[at + t])
        end = (ix == 0) | (length + 1 >= max_length)
        contexts = np.where(end, 0, (contexts * choose.V + ix) % choose.rows)
        length = np.where(end, 0, length + 1)
        if t >= lead:
            picked[:, t - lead] = ix
            ends[:, t - lead] = end
    return picked, ends, begun, np.stack((contexts, length))


def _one_at_a_time(
    choose: _Chooser, u: np.ndarray, state: tuple[int, int], max_length: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """_walk's result for one segment from its true state, one symbol at a time in Python
    floats (bisect makes searchsorted's comparisons)."""
    V, rows, last = choose.V, choose.rows, choose.V - 1
    context, length = state
    picked, ends = [], []
    for x in u.tolist():
        row = choose.row(context)
        ix = min(bisect.bisect_right(row, x * row[-1]), last)
        end = ix == 0 or length + 1 >= max_length
        context, length = (0, 0) if end else ((context * V + ix) % rows, length + 1)
        picked.append(ix)
        ends.append(end)
    return np.array(picked), np.array(ends), (context, length)


def spell(vocab: list[str], drawn: Drawn) -> list[str]:
    """The drawn names as strings (each vocabulary entry is one character), in one
    vectorised pass: the inverse of bigram.names.encode."""
    codes = np.array([ord(c) for c in vocab], dtype=np.uint32)
    text = np.insert(codes[drawn.symbols], np.cumsum(drawn.lengths), ord("\n"))
    return text.tobytes().decode("utf-32-le").split("\n")[:-1]
