"""bigram.sampling: seeded names drawn from the model, all at once and bit for bit the
names of drawing them one symbol at a time."""

import numpy as np
import pytest

from bigram import sampling
from bigram.context import advance
from bigram.model import distributions
from bigram.names import encode
from bigram.sampling import Drawn, draw, spell


def sample(P, count, seed, max_length, progress=None):
    """draw()'s names as lists of symbol indices."""
    drawn = draw(P, count, seed, max_length, progress)
    return [s.tolist() for s in np.split(drawn.symbols, np.cumsum(drawn.lengths)[:-1])]


def test_sample_follows_the_model_and_is_seeded():
    # A model that always goes . -> a -> b -> . (probabilities ~1).
    W = np.full((3, 3), -50.0, dtype=np.float32)
    W[0, 1] = W[1, 2] = W[2, 0] = 50.0
    assert sample(distributions(W)[1], 3, seed=0, max_length=10) == [[1, 2]] * 3
    P = distributions(np.zeros((5, 5), dtype=np.float32))[1]
    assert sample(P, 20, 7, 50) == sample(P, 20, 7, 50)
    assert sample(P, 20, 7, 50) != sample(P, 20, 8, 50)
    assert all(len(s) <= 3 for s in sample(P, 50, 1, max_length=3))


def test_sampling_reports_progress_without_changing_the_names(monkeypatch):
    P = np.full((3, 3), 1 / 3)
    monkeypatch.setattr(sampling, "_CHUNK", 64)  # chunks of 64 stream positions
    monkeypatch.setattr(sampling, "_SEGMENT", 16)
    seen = []
    with_progress = sample(P, 120, 7, 10, progress=seen.append)
    assert with_progress == sample(P, 120, 7, 10)
    assert seen[0] == 0 and seen[-1] == 120 and seen == sorted(seen)
    # Names of 3 draws on average (1/3 stop at each step): about 21 names per chunk.
    assert 3 <= len(seen) <= 8


def one_at_a_time(P, count, seed, max_length):
    """The sample stage's loop before it was vectorised: one name after another, one
    uniform per symbol or final '.', the symbol found by searchsorted in its context's
    row of the cumulative P. Kept as the reference that draw() must equal bit for bit,
    so samples stay the same bytes for the same seed."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(P, axis=1)
    n_rows, V = P.shape
    out = []
    for _ in range(count):
        context, seq = 0, []
        while len(seq) < max_length:
            row = cdf[context]
            ix = min(int(np.searchsorted(row, rng.random() * row[-1], side="right")), V - 1)
            if ix == 0:
                break
            seq.append(ix)
            context = advance(context, ix, n_rows, V)
        out.append(seq)
    return out


MODELS = {  # name -> (V, context, scale of W, bias against '.')
    "bigram": (27, 1, 2.0, 0.0),
    "long names": (27, 1, 1.0, 3.0),
    "trigram": (27, 2, 2.0, 1.0),
    "4-gram of 6 symbols": (6, 4, 3.0, 1.0),  # 1296 contexts: draws spread over many
    "nearly uniform": (3, 1, 0.1, 0.0),
}
DRAWS = [(300, 50), (600, 4), (200, 1), (60, 200)]  # (count, max_length)
# (stream positions per chunk, per segment, steps walked before a segment): the last two
# walk too little ahead for the segments to meet the names before them, so most are
# drawn again one at a time.
CHUNKS = [(2**22, 256, 64), (400, 8, 20), (5000, 1, 0), (300, 16, 1)]


@pytest.mark.parametrize("case", MODELS)
def test_vectorised_sampling_draws_the_one_at_a_time_names(case, monkeypatch):
    V, k, scale, bias = MODELS[case]
    W = np.random.default_rng(0).normal(size=(V**k, V)) * scale
    W[:, 0] -= bias  # a lower P('.') makes longer names
    P = distributions(W)[1]
    for count, max_length in DRAWS:
        expected = one_at_a_time(P, count, 7, max_length)
        for chunk, segment, lead in CHUNKS:  # how the stream is cut never changes a name
            monkeypatch.setattr(sampling, "_CHUNK", chunk)
            monkeypatch.setattr(sampling, "_SEGMENT", segment)
            monkeypatch.setattr(sampling, "_LEAD", lead)
            assert sample(P, count, 7, max_length) == expected, (count, max_length, chunk)


def scalar_choice(p, u):
    row = np.cumsum(p)
    return min(int(np.searchsorted(row, u * row[-1], side="right")), p.size - 1)


def test_every_way_of_choosing_a_symbol_makes_the_scalar_comparison():
    rng = np.random.default_rng(1)
    P = distributions(rng.normal(size=(4**5, 4)) * 3)[1]
    P[7] = [0.5, 0.5, 0.0, 0.0]  # a zero-probability symbol: equal cdf values
    choose = sampling._Chooser(np.cumsum(P, axis=1))
    u = np.concatenate([rng.random(5000), [0.0, 0.5, 1 - 2**-53]])
    for contexts in (rng.integers(0, 3, u.size), rng.integers(0, 4**5, u.size)):
        contexts[-3:] = 7
        expected = [
            min(int(np.searchsorted(P[c].cumsum(), x * P[c].sum(), side="right")), 3)
            for c, x in zip(contexts, u)
        ]
        assert choose.many(contexts, u).tolist() == expected  # grouped by context
        x = u * choose.totals[contexts]
        assert np.minimum(choose._ranked(contexts, x), 3).tolist() == expected
        assert np.minimum(choose._dense(contexts, x), 3).tolist() == expected


def test_spell_is_the_inverse_of_encode():
    names = ["emma", "zoë", "a", "mary ann", "", "ava"]
    vocab, pairs = encode([n for n in names if n])
    symbols = np.array([vocab.index(c) for n in names for c in n], dtype=np.int64)
    assert spell(vocab, Drawn(symbols, np.array([len(n) for n in names]))) == names
