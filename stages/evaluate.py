"""Stage 4, evaluate: cross-entropy and perplexity of the model, and of every
checkpoint, on every split."""

from bigram import artifacts, checkpoint, fsio, params, portable
from bigram.console import progress
from bigram.model import log_softmax, split_nlls
from bigram.stage import run_stage


def main() -> None:
    params.load()  # no evaluate params, but a broken params.yaml must still stop the run
    vocab = artifacts.read_vocab()
    W = checkpoint.read(vocab=vocab)[0]
    counts = artifacts.read_counts(len(vocab), W.shape[0])
    nlls = split_nlls(counts, log_softmax(W))
    # The notebook's "loss at step 0/50/100/..." table, for every checkpoint.
    rows = []
    for path in artifacts.checkpoint_paths():
        W, meta = checkpoint.read(path, vocab)
        at = split_nlls(counts, log_softmax(W))
        rows.append(f"{meta['step']},{at['train']:.7g},{at['dev']:.7g},{at['test']:.7g}\n")
    with fsio.stage_outputs():
        artifacts.write_text(artifacts.EVAL_STEPS, "step,train,dev,test\n" + "".join(rows))
        # e^nll overflows a float past nll ≈ 709; JSON has no infinity, so null.
        metrics = {
            split: {"nll": v, "perplexity": float(portable.exp(v)) if v < 709 else None}
            for split, v in nlls.items()
        }
        artifacts.write_json(artifacts.metrics_path("evaluate"), metrics)
    progress("evaluate", " ".join(f"{k}={v:.4f}" for k, v in nlls.items()))


if __name__ == "__main__":
    run_stage("evaluate", main, __doc__)
