"""Stage 1: names file -> vocabulary + bigram pairs."""
from stages import artifacts, lineage, params
from stages.cli import progress, run
from stages.core import encode, parse_names


def main():
    p = params.load()
    path = p["data"]["names"]
    names = parse_names(artifacts.read_names_file(path), path)
    vocab, pairs = encode(names)
    artifacts.write_json(artifacts.VOCAB, vocab)
    artifacts.write_npy(artifacts.PAIRS, pairs)
    artifacts.write_json(artifacts.PREPARE_LINEAGE, [lineage.record(
        "prepare", {"data": p["data"]}, [path], [artifacts.VOCAB, artifacts.PAIRS])])
    artifacts.write_json(artifacts.metrics_path("prepare"),
                         {"names": len(names), "pairs": pairs.shape[1], "vocab_size": len(vocab)})
    progress("prepare", f"{len(names)} names, {pairs.shape[1]} pairs, {len(vocab)} symbols")


if __name__ == "__main__":
    run(main)
