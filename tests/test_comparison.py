"""bigram.comparison: the count-based P against the neural one, and the bigram table."""

import io
import math

import numpy as np
import pytest

from bigram.comparison import bigram_table, compare, count_probs, mean_kl


def test_compare_by_hand():
    # Two symbols; counts on train [[1, 3], [2, 0]], add-1: P = [[2/6, 4/6], [3/4, 1/4]].
    counts = np.array([[[1, 3], [2, 0]], [[0, 1], [0, 0]], [[1, 0], [0, 0]]])
    W = np.log(np.array([[0.5, 0.5], [0.5, 0.5]], dtype=np.float32))
    metrics, p_count, p_neural, fitted = compare(counts, W, smoothing=1, fit="train")
    assert np.allclose(p_count, [[2 / 6, 4 / 6], [3 / 4, 1 / 4]])
    assert metrics["count"]["dev"] == pytest.approx(-math.log(4 / 6))
    assert metrics["count"]["test"] == pytest.approx(-math.log(2 / 6))
    assert metrics["neural"]["all"] == pytest.approx(math.log(2))
    assert metrics["max_abs_diff"] == pytest.approx(0.25)
    kl0 = 2 / 6 * math.log(2 / 6 / 0.5) + 4 / 6 * math.log(4 / 6 / 0.5)
    kl1 = 3 / 4 * math.log(3 / 4 / 0.5) + 1 / 4 * math.log(1 / 4 / 0.5)
    assert metrics["kl_count_neural"] == pytest.approx((kl0 + kl1) / 2)
    _, p_all, _, fitted_all = compare(counts, W, smoothing=1, fit="all")
    assert fitted_all.tolist() == [[2, 4], [2, 0]]
    assert np.allclose(p_all, count_probs(fitted_all, 1))
    assert mean_kl(p_all, np.log(p_all)) == pytest.approx(0)


def test_bigram_table_is_what_pandas_writes():
    import pandas as pd

    vocab = [".", " ", ",", '"', "'", "a", "é"]
    V = len(vocab)
    rng = np.random.default_rng(0)
    fitted, p_count, p_neural = (
        rng.integers(0, 1000, (V, V)),
        rng.random((V, V)),
        rng.random((V, V)) / 7,
    )
    frame = pd.DataFrame(
        {
            "prev": np.repeat(vocab, V),
            "next": np.tile(vocab, V),
            "count": fitted.ravel(),
            "p_count": p_count.ravel(),
            "p_neural": p_neural.ravel(),
        }
    )
    expected = frame.to_csv(index=False, float_format="%.8g", lineterminator="\n")
    assert bigram_table(vocab, fitted, p_count, p_neural) == expected
    back = pd.read_csv(io.StringIO(expected), keep_default_na=False)
    assert back["prev"].tolist() == list(np.repeat(vocab, V))


def test_the_bigram_table_caps_large_vocabularies_to_the_most_frequent_symbols():
    from bigram.comparison import table_symbols

    V = 100
    fitted = np.zeros((V, V), dtype=np.int64)
    fitted[0, 1:] = np.arange(1, V)  # symbol i starts after '.' i times: frequency grows with i
    assert table_symbols(fitted[:60, :60]) == list(range(60))
    kept = table_symbols(fitted)
    assert kept == [0, *range(V - 59, V)]  # '.', then the 59 most frequent, in vocabulary order
    vocab = ["."] + [chr(0x4E00 + i) for i in range(V - 1)]
    P = np.full((V, V), 1 / V)
    rows = bigram_table(vocab, fitted, P, P, (kept, kept)).splitlines()
    assert len(rows) == 1 + 60 * 60
