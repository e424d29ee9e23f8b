"""Stage 1, prepare: names file -> vocabulary + bigram pairs.

Reads   params.yaml (data), the names file data.names
Writes  data/prepared/vocab.json, data/prepared/pairs.npy, data/prepared/lineage.json,
        metrics/prepare.json
"""

from dataclasses import asdict

from bigram import artifacts, fsio, lineage, params
from bigram.console import progress, run_stage
from bigram.names import check_vocabulary, encode, parse_names


def main() -> None:
    data = params.load().data
    names = parse_names(artifacts.read_names_file(data.names), data.names)
    vocab, pairs = encode(names)
    check_vocabulary(len(vocab), data.names)
    with fsio.stage_outputs():
        artifacts.write_json(artifacts.VOCAB, vocab)
        artifacts.write_npy(artifacts.PAIRS, pairs)
        artifacts.write_json(
            artifacts.PREPARE_LINEAGE,
            [
                lineage.record(
                    "prepare",
                    {"data": asdict(data)},
                    [data.names],
                    [artifacts.VOCAB, artifacts.PAIRS],
                )
            ],
        )
        artifacts.write_json(
            artifacts.metrics_path("prepare"),
            {"names": len(names), "pairs": pairs.shape[1], "vocab_size": len(vocab)},
        )
    progress("prepare", f"{len(names)} names, {pairs.shape[1]} pairs, {len(vocab)} symbols")


if __name__ == "__main__":
    run_stage("prepare", main, __doc__)
