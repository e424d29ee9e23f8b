"""Stage 1, prepare: names file -> vocabulary + bigram pairs."""

from dataclasses import asdict, dataclass

import numpy as np

from bigram import artifacts, fsio, lineage, params
from bigram.artifacts import PAIRS, PREPARE_LINEAGE, VOCAB, json_bytes, npy_bytes
from bigram.console import progress
from bigram.names import check_vocabulary, encode, parse_names
from bigram.params import DataParams
from bigram.stage import run_stage


@dataclass(frozen=True)
class Prepared:
    names: int
    vocab: list[str]
    pairs: np.ndarray
    chain: list[lineage.Link]
    files: dict[str, bytes]  # vocab.json, pairs.npy, lineage.json


def derive(raw: bytes, data: DataParams, code: dict[str, str]) -> Prepared:
    """The names file's bytes -> vocabulary and bigram pairs."""
    names = parse_names(raw, data.names)
    vocab, pairs = encode(names)
    check_vocabulary(len(vocab), data.names)
    files = {VOCAB: json_bytes(vocab), PAIRS: npy_bytes(pairs)}
    chain = [lineage.record("prepare", {"data": asdict(data)}, {data.names: raw}, files, code)]
    files[PREPARE_LINEAGE] = json_bytes(chain)
    return Prepared(len(names), vocab, pairs, chain, files)


def main() -> None:
    data = params.load().data
    # One read: the bytes parsed are the bytes digested into the lineage.
    raw = artifacts.read_names_file(data.names)
    out = derive(raw, data, lineage.stage_code("prepare"))
    pairs = out.pairs.shape[1]
    with fsio.stage_outputs():
        for path, content in out.files.items():
            artifacts.write_bytes(path, content)
        artifacts.write_json(
            artifacts.metrics_path("prepare"),
            {"names": out.names, "pairs": pairs, "vocab_size": len(out.vocab)},
        )
    progress("prepare", f"{out.names} names, {pairs} pairs, {len(out.vocab)} symbols")


if __name__ == "__main__":
    run_stage("prepare", main, __doc__)
