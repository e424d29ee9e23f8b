"""The acceptance test: default params on the real names list reproduce the
notebook's printed numbers (../shared/data/README.md)."""

import pytest

from tests.conftest import REAL_NAMES, STAGES, read_json, set_params, stage, use_real_names

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REAL_NAMES.exists(), reason=f"{REAL_NAMES} is absent"),
]


def test_pipeline_reproduces_the_notebook_on_names_txt(project):
    use_real_names(project)
    set_params(project, compare__fit="all")
    for name in STAGES:
        stage(project, name)
    assert read_json(project / "metrics/prepare.json") == {
        "names": 32033,
        "pairs": 228146,
        "vocab_size": 27,
    }
    assert read_json(project / "metrics/split.json") == {
        "train": 182516,
        "dev": 22814,
        "test": 22816,
    }
    ev = read_json(project / "metrics/evaluate.json")
    assert ev["train"]["nll"] == pytest.approx(2.4644, abs=1e-3)
    assert ev["dev"]["nll"] == pytest.approx(2.4691, abs=1e-3)
    assert ev["test"]["nll"] == pytest.approx(2.4704, abs=1e-3)
    cmp = read_json(project / "metrics/compare.json")
    assert cmp["count"]["all"] == pytest.approx(2.4546, abs=1e-3)
    assert cmp["neural"]["all"] == pytest.approx(2.4655, abs=1e-3)
    assert cmp["neural"] == {k: v["nll"] for k, v in ev.items()}
