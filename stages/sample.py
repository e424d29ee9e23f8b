"""Stage 6, sample: draw names from the trained model."""

from bigram import artifacts, checkpoint, fsio, params
from bigram.console import bar, progress
from bigram.model import distributions
from bigram.names import parse_names
from bigram.sampling import draw, spell
from bigram.stage import run_stage


def main() -> None:
    settings = params.load()
    wanted = settings.sample
    vocab = artifacts.read_vocab()
    W = checkpoint.read(vocab=vocab)[0]
    drawn = draw(
        distributions(W / wanted.temperature)[1],
        wanted.count,
        wanted.seed,
        wanted.max_length,
        progress=lambda done: bar("sample", done, wanted.count),  # on a terminal only
    )
    names = spell(vocab, drawn)
    path = settings.data.names
    known = set(parse_names(artifacts.read_names_file(path), path))
    metrics = {
        "mean_length": int(drawn.lengths.sum()) / len(names),
        "novel": sum(name not in known for name in names) / len(names),
    }
    with fsio.stage_outputs():
        artifacts.write_text(artifacts.SAMPLES, "".join(name + "\n" for name in names))
        artifacts.write_json(artifacts.metrics_path("sample"), metrics)
    progress("sample", ", ".join(names[:5]) + (", ..." if len(names) > 5 else ""))


if __name__ == "__main__":
    run_stage("sample", main, __doc__)
