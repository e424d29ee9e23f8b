"""Stage 6, sample: draw names from the trained model.

Reads   params.yaml (data, sample), the names file data.names, data/prepared/vocab.json,
        models/model.safetensors
Writes  data/samples.txt, metrics/sample.json
"""

from bigram import artifacts, checkpoint, fsio, params
from bigram.console import bar, progress
from bigram.model import distributions, sample
from bigram.names import parse_names
from bigram.stage import run_stage


def main() -> None:
    settings = params.load()
    draw = settings.sample
    vocab = artifacts.read_vocab()
    W = checkpoint.read(vocab=vocab)[0]
    seqs = sample(
        distributions(W)[1],
        draw.count,
        draw.seed,
        draw.max_length,
        progress=lambda done: bar("sample", done, draw.count),  # on a terminal only
    )
    drawn = ["".join(vocab[i] for i in seq) for seq in seqs]
    path = settings.data.names
    known = set(parse_names(artifacts.read_names_file(path), path))
    metrics = {
        "mean_length": sum(map(len, drawn)) / len(drawn),
        "novel": sum(name not in known for name in drawn) / len(drawn),
    }
    with fsio.stage_outputs():
        artifacts.write_text(artifacts.SAMPLES, "".join(name + "\n" for name in drawn))
        artifacts.write_json(artifacts.metrics_path("sample"), metrics)
    progress("sample", ", ".join(drawn[:5]) + (", ..." if len(drawn) > 5 else ""))


if __name__ == "__main__":
    run_stage("sample", main, __doc__)
