"""Stage 4: cross-entropy and perplexity of the checkpoint on every split."""
import math

from stages import artifacts, params
from stages.cli import progress, run
from stages.core import log_softmax, split_nlls


def main():
    params.load()
    vocab = artifacts.read_vocab()
    counts = artifacts.read_counts(len(vocab))
    nlls = split_nlls(counts, log_softmax(artifacts.load_model(vocab)[0]))
    # The notebook's "loss at step 0/50/100/..." table, for every checkpoint.
    rows = []
    for path in artifacts.checkpoint_paths():
        W, meta = artifacts.load_model(vocab, path)
        at = split_nlls(counts, log_softmax(W))
        rows.append(f"{meta['step']},{at['train']:.7g},{at['dev']:.7g},{at['test']:.7g}\n")
    artifacts.write_text(artifacts.EVAL_STEPS, "step,train,dev,test\n" + "".join(rows))
    # e^nll overflows a float past nll ≈ 709; JSON has no infinity, so null.
    metrics = {split: {"nll": v, "perplexity": math.exp(v) if v < 709 else None}
               for split, v in nlls.items()}
    artifacts.write_json(artifacts.metrics_path("evaluate"), metrics)
    progress("evaluate", " ".join(f"{k}={v:.4f}" for k, v in nlls.items()))


if __name__ == "__main__":
    run(main)
