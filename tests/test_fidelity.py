"""The acceptance test: default params on the real names list reproduce the
notebook's printed numbers (../shared/data/README.md)."""

import hashlib

import pytest
from safetensors.numpy import load

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
        "pairs_per_split": {"train": 182516, "dev": 22814, "test": 22816}
    }
    ev = read_json(project / "metrics/evaluate.json")
    assert ev["train"]["nll"] == pytest.approx(2.4644, abs=1e-3)
    assert ev["dev"]["nll"] == pytest.approx(2.4691, abs=1e-3)
    assert ev["test"]["nll"] == pytest.approx(2.4704, abs=1e-3)
    cmp = read_json(project / "metrics/compare.json")
    assert cmp["count"]["all"] == pytest.approx(2.4546, abs=1e-3)
    assert cmp["neural"]["all"] == pytest.approx(2.4655, abs=1e-3)
    assert cmp["neural"] == {k: v["nll"] for k, v in ev.items()}


# sha256 of every artifact of a default run on names.txt, made by the pipeline at commit
# 6737ca3, the last before model.context existed: a context of one symbol is that pipeline.
BIGRAM_PIPELINE = {
    "data/prepared/pairs.npy": "7a1ee935ef8f9cb25fac411a70c23f1ef938dd846fde3c6feb52740ec4f15e6f",
    "data/prepared/vocab.json": "f28d2999b87545117f40e8a45162ad991c4350b9651763adeafbae310238c320",
    "data/samples.txt": "5bda0134abb793bae7afd572d719e30971ef07d63eaf3fa3ff2a909fd995d1ca",
    "data/split/counts.npy": "1c810cbf44f891cee2416252755e262b21ac6117f95ea4ef3be38d968cc91d8d",
    "data/split/split.npy": "fcb2fde1d1987f2bca322a84a405d202d795a0bd5df92a71cbca0cb02ccb65ba",
    "metrics/compare.json": "929e2d41cc027c1d6b422cb4190a3e16bbd326e9eec8b9889e2e566b9631c4df",
    "metrics/evaluate.json": "4c79f413f292e51d8e11cc47b2cceb533dcf48861aba3be730e4e83bbd2b6255",
    "metrics/prepare.json": "42914fe64c8a0a91966b24ea870137415bd8e090a718904d443e6881066915e7",
    "metrics/sample.json": "cf281fd5471be4cd8403f75d336b45c61051db6351d8cfb20af36f553681e70c",
    "metrics/split.json": "c748e722b9b4c2c55c8f8fd371ce59b8b6e5f44fb175ee2a9c625619c734a8db",
    "metrics/train.json": "36bd29d2f43a04db46e60075873e16a182cadd44b022eb80f0035792e9f27b13",
    "plots/bigrams.csv": "cf3308067d23d1a9f76e0802f9827b18a3a4030d8a45eba9e5f083efa3654675",
    "plots/eval_steps.csv": "7b3c05f7d7f37a1c6595fe1b589215cecbef84c90e97710e4c42421d0b4a1343",
    "plots/train_loss.csv": "d57fdcb4b80459ebc7c61b82b0bf792e8b9a26546a3eeef0f21871a715f8efb6",
}
# For checkpoints (models/NAME.safetensors), of W's bytes: their metadata records the
# code's commit and the params.
BIGRAM_PIPELINE_W = {
    "checkpoints/step_000000": "cb5cfb622b2b32aff2cf5b7288bcc1cc15fe10dbe37681937af3e5caab97c3f0",
    "checkpoints/step_000050": "03e0d8a939217063ad72b9c185ee376311b02f35eceba03e4730dca97fe55b52",
    "checkpoints/step_000100": "d69c0ed9f6b4fbc8316d5ef491989bba8c3128ab7d2f239a89c0afaf399aad50",
    "checkpoints/step_000150": "3ebe817f63b724dde69984e7665640fc159648457084f83e3d8fc6b07fbd27a7",
    "checkpoints/step_000200": "534c3bc8281d75fe3ee6dfb58ff680b6babe08abd102ca1ccba866d8ad2440d7",
    "model": "534c3bc8281d75fe3ee6dfb58ff680b6babe08abd102ca1ccba866d8ad2440d7",
}


def test_context_1_is_the_bigram_pipeline_byte_for_byte(project):
    use_real_names(project)
    for name in STAGES:
        stage(project, name)
    files = {p: hashlib.sha256((project / p).read_bytes()).hexdigest() for p in BIGRAM_PIPELINE}
    assert files == BIGRAM_PIPELINE
    weights = {
        name: hashlib.sha256(
            load((project / f"models/{name}.safetensors").read_bytes())["W"].tobytes()
        ).hexdigest()
        for name in BIGRAM_PIPELINE_W
    }
    assert weights == BIGRAM_PIPELINE_W
