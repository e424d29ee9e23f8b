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


# Stream positions per batch at most; steps walked ahead from every position; and the
# mean draws per name up to which walking ahead pays.
_BATCH = 2**20
_SPECULATE = 32
_SHORT = 12


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
    final '.', so the first k names of a larger count are the names of count=k. Where
    a name starts depends on where the one before ended, so they cannot simply be
    drawn side by side. Instead, while names are short, every position of a batch of
    the stream is walked at once as if a name started there, which tells where that
    name would end; the chain of real starts is followed from the first (a longer name
    is drawn on one symbol at a time, as are all names once they prove long); then
    the names at the real starts are drawn together. Bit for bit the names of the
    one-name-at-a-time loop (the tests keep it as the reference). Time and memory grow
    with count × max_length (the sample stage bounds it: bigram.params).
    progress(done) is called after each batch."""
    rng = np.random.default_rng(seed)
    choose = _Chooser(np.cumsum(P, axis=1))
    symbols, lengths = [], []
    done = start = walked = 0
    # A small first batch tells how long names are; the next ones are sized from what
    # the names so far took. A name takes at most max_length draws, so the stream holds
    # that many beyond the batch.
    batch = max(min(count * max_length, 16 * count + 4096, _BATCH // 16), max_length)
    stream = rng.random(batch + max_length)
    while done < count:
        if progress is not None:
            progress(done)
        # Walking ahead from every position costs about the square of the names' length
        # (positions per name × steps each), one symbol at a time the length (at a
        # higher cost per step): it pays for names of up to about a dozen symbols.
        ahead = _SPECULATE if walked <= _SHORT * done else 0
        starts, after = _starts(choose, stream, batch, start, count - done, max_length, ahead)
        names = _walk(choose, stream, starts, max_length, record=True)
        symbols.append(names.symbols)
        lengths.append(names.lengths)
        done += starts.size
        walked += after - start
        start = after - batch
        batch = max(min((count - done) * walked // done + 64, _BATCH), max_length)
        stream = np.concatenate([stream[-max_length:], rng.random(batch)])
    if progress is not None:
        progress(count)
    return Drawn(np.concatenate(symbols), np.concatenate(lengths))


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
            ix = self._ranked(contexts, x)
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


class _Walked(NamedTuple):
    symbols: np.ndarray  # if recorded: every name's symbols, one name after another
    lengths: np.ndarray  # each name's symbols so far
    ended: np.ndarray  # whether a '.' ended it
    contexts: np.ndarray  # the context reached, for the names still going


# Below this many names still going, a step side by side costs more than their steps
# one at a time.
_SIDE_BY_SIDE = 32


def _walk(
    choose: _Chooser, stream: np.ndarray, starts: np.ndarray, steps: int, record: bool
) -> _Walked:
    """The names starting at each of `starts` in `stream`, drawn for at most `steps`
    symbols: side by side, then the last few one at a time."""
    n = starts.size
    lengths = np.full(n, steps, dtype=np.int64)
    ended = np.zeros(n, dtype=bool)
    active, at = np.arange(n), starts.copy()
    contexts = np.zeros(n, dtype=np.int64)
    picked = []
    t = 0
    while t < steps and active.size >= _SIDE_BY_SIDE:
        ix = choose.many(contexts, stream[at])
        going = ix != 0
        lengths[active[~going]] = t
        ended[active[~going]] = True
        active, ix, at = active[going], ix[going], at[going] + 1
        contexts = (contexts[going] * choose.V + ix) % choose.rows
        if record:
            picked.append((active, ix))
        t += 1
    reached = np.zeros(n, dtype=np.int64)
    reached[active] = contexts
    tails = {}
    if t < steps:
        for i, position in zip(active.tolist(), at.tolist()):
            tail, ended[i], reached[i] = _one_at_a_time(
                choose, stream, position, int(reached[i]), steps - t
            )
            lengths[i] = t + len(tail)
            tails[i] = tail
    symbols = np.empty(int(lengths.sum()) if record else 0, dtype=index_dtype(choose.V))
    if record:
        offsets = np.cumsum(lengths) - lengths  # where each name's symbols begin
        for step, (who, ix) in enumerate(picked):
            symbols[offsets[who] + step] = ix
        for i, tail in tails.items():
            symbols[offsets[i] + t : offsets[i] + t + len(tail)] = tail
    return _Walked(symbols, lengths, ended, reached)


def _one_at_a_time(
    choose: _Chooser, stream: np.ndarray, position: int, context: int, steps: int
) -> tuple[list[int], bool, int]:
    """A name drawn on from `position` in `context` for at most `steps` symbols, in Python
    floats (bisect makes searchsorted's comparisons): its symbols, whether a '.' ended
    it, and the context reached."""
    symbols: list[int] = []
    V, rows, last = choose.V, choose.rows, choose.V - 1
    end = position + steps
    for piece in range(position, end, 256):  # the stream read a piece at a time
        for u in stream[piece : min(piece + 256, end)].tolist():
            row = choose.row(context)
            ix = min(bisect.bisect_right(row, u * row[-1]), last)
            if ix == 0:
                return symbols, True, context
            symbols.append(ix)
            context = (context * V + ix) % rows
    return symbols, False, context


def _starts(
    choose: _Chooser,
    stream: np.ndarray,
    batch: int,
    start: int,
    wanted: int,
    max_length: int,
    ahead: int,
) -> tuple[np.ndarray, int]:
    """Where the next names (at most `wanted`) start among the first `batch` positions
    of `stream`, the first at `start`, walking `ahead` steps from every position; and
    where the name after them starts."""
    steps = min(ahead, max_length)
    walked = _walk(choose, stream, np.arange(batch if steps else 0), steps, record=False)
    # Draws a name starting at each position takes, its symbols and the final '.'; -1
    # where it is still going after the steps walked.
    takes = np.where(walked.lengths == max_length, max_length, -1)
    takes = np.where(walked.ended, walked.lengths + 1, takes).tolist()
    starts: list[int] = []
    at = start
    while at < batch and len(starts) < wanted:
        starts.append(at)
        took = takes[at] if steps else -1
        if took < 0:
            context = int(walked.contexts[at]) if steps else 0
            tail, ended, _ = _one_at_a_time(choose, stream, at + steps, context, max_length - steps)
            took = steps + len(tail) + ended
        at += took
    return np.array(starts, dtype=np.int64), at


def spell(vocab: list[str], drawn: Drawn) -> list[str]:
    """The drawn names as strings (each vocabulary entry is one character), in one
    vectorised pass: the inverse of bigram.names.encode."""
    codes = np.array([ord(c) for c in vocab], dtype=np.uint32)
    text = np.insert(codes[drawn.symbols], np.cumsum(drawn.lengths), ord("\n"))
    return text.tobytes().decode("utf-32-le").split("\n")[:-1]
