"""Stage 6: draw names from the trained model."""
from stages import artifacts, params
from stages.cli import progress, run
from stages.core import log_softmax, parse_names, sample


def main():
    p = params.load()
    s = p["sample"]
    vocab = artifacts.read_vocab()
    W = artifacts.load_model(vocab)[0]
    seqs = sample(log_softmax(W), s["count"], s["seed"], s["max_length"])
    drawn = ["".join(vocab[i] for i in seq) for seq in seqs]
    path = p["data"]["names"]
    known = set(parse_names(artifacts.read_names_file(path), path))
    artifacts.write_text(artifacts.SAMPLES, "".join(name + "\n" for name in drawn))
    artifacts.write_json(artifacts.metrics_path("sample"), {
        "mean_length": sum(map(len, drawn)) / len(drawn),
        "novel": sum(name not in known for name in drawn) / len(drawn)})
    progress("sample", ", ".join(drawn[:5]) + (", ..." if len(drawn) > 5 else ""))


if __name__ == "__main__":
    run(main)
