"""What each stage reads and writes: the one table of it.

The stages' --help, the lineage records (which name a stage's inputs and data outputs)
and the audit read it from here, and tests/test_pipeline.py holds dvc.yaml's deps,
params, outs and metrics to it (the code deps are bigram.codedeps').
"""

from dataclasses import dataclass

from bigram import artifacts as a

NAMES = "${data.names}"  # the names file, wherever params.yaml's data.names points


@dataclass(frozen=True)
class StageIO:
    params: tuple[str, ...]  # params.yaml sections
    reads: tuple[str, ...]  # files, and directories without a trailing slash
    writes: tuple[str, ...]  # the same, metrics last

    def recorded_inputs(self, names: str) -> list[str]:
        """The inputs a lineage record names: what the stage reads, but the lineage files
        (whose records the record's chain repeats)."""
        return [names if r == NAMES else r for r in self.reads if not r.endswith("lineage.json")]

    def recorded_outputs(self) -> list[str]:
        """The data outputs a lineage record names (a checkpoint records itself)."""
        return [w for w in self.writes if w.startswith("data/") and not w.endswith("lineage.json")]


STAGES: dict[str, StageIO] = {
    "prepare": StageIO(
        ("data",),
        (NAMES,),
        (a.VOCAB, a.PAIRS, a.PREPARE_LINEAGE, a.metrics_path("prepare")),
    ),
    "split": StageIO(
        ("split", "model"),
        (a.VOCAB, a.PAIRS, a.PREPARE_LINEAGE),
        (a.SPLIT, a.COUNTS, a.SPLIT_LINEAGE, a.metrics_path("split")),
    ),
    "train": StageIO(
        ("train",),
        (a.VOCAB, a.COUNTS, a.SPLIT_LINEAGE),
        (a.MODEL, a.CHECKPOINTS, a.LOSS_CURVE, a.metrics_path("train")),
    ),
    "evaluate": StageIO(
        (),
        (a.VOCAB, a.COUNTS, a.MODEL, a.CHECKPOINTS),
        (a.EVAL_STEPS, a.metrics_path("evaluate")),
    ),
    "compare": StageIO(
        ("compare",),
        (a.VOCAB, a.COUNTS, a.MODEL),
        (a.BIGRAMS, a.metrics_path("compare")),
    ),
    "sample": StageIO(
        ("data", "sample"),
        (NAMES, a.VOCAB, a.MODEL),
        (a.SAMPLES, a.metrics_path("sample")),
    ),
}
# The stages whose records make a checkpoint's lineage, in order.
RECORDED = ("prepare", "split", "train")


def describe(stage: str) -> str:
    """The Reads / Writes lines of a stage's --help."""
    io = STAGES[stage]
    shown = f"params.yaml ({', '.join(io.params)})" if io.params else "params.yaml"
    reads = [shown, *("the names file data.names" if r == NAMES else r for r in io.reads)]
    return f"Reads   {', '.join(reads)}\nWrites  {', '.join(io.writes)}"
