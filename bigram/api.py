"""The Python API: a trained checkpoint as an object, for use outside the pipeline.

    from bigram.api import load

    model = load("models/model.safetensors")   # or load(rev="HEAD") for a git rev / experiment
    model = load(rev="my-exp", repo="~/neural-bigram")   # from a notebook anywhere
    model.vocab, model.W, model.meta           # symbols, the V^k×V weights, the lineage
    model.context                              # k, the symbols it sees (1: the bigram)
    model.probabilities(".")                   # P(first symbol of a name), for k = 1
    model.table()                              # P as a DataFrame: contexts × next symbols
    model.nll(["emma", "olivia"])              # mean NLL per symbol predicted
    model.sample(20, seed=42)                  # = data/samples.txt for sample.seed 42
    model.torch_weights()                      # W as a torch tensor, to keep training

This module owns only the glue: reading goes through bigram.artifacts (safetensors, never
a pickle, every metadata field checked) and the maths is bigram.model's, so the numbers
are the stages' numbers, the same bytes on every machine. It is part of the installed
`bigram` package, so it works from any directory (the `stages` package does not: it is
importable only from the project root). Bad arguments raise ValueError; a missing or
broken checkpoint raises bigram.console.PipelineError, whose message names the fix.
"""

import contextlib
import os
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from bigram import artifacts, checkpoint, lineage, model, params, sampling
from bigram.console import PipelineError
from bigram.context import advance, context_rows, label
from bigram.names import BOUNDARY, encode
from bigram.params import outside_project

if TYPE_CHECKING:  # imported only by torch_weights() and table(): each takes a second
    import pandas
    import torch


@dataclass(frozen=True, eq=False, repr=False)
class Model:
    """A trained model: W's row holds the logits of the symbol after a context, the k
    previous symbols read as a base-V number (row i is vocab[i] for the bigram, k = 1).

    vocab   the symbols, index = column of W; '.' (index 0) starts and ends a name
    W       float32 V^k×V, read-only (copy it to change it)
    meta    the checkpoint's metadata: step, loss, the lineage of every input, code, versions
    """

    vocab: list[str]
    W: np.ndarray
    meta: checkpoint.Meta

    def __repr__(self) -> str:
        # The default repr would print all of W and the whole lineage.
        return f"Model(V={len(self.vocab)}, context={self.context}, step={self.meta.get('step')})"

    @property
    def context(self) -> int:
        """k, the previous symbols the model sees (model.context when it was trained)."""
        return lineage.context_of(self.meta["lineage"])

    @cached_property
    def _distributions(self) -> tuple[np.ndarray, np.ndarray]:
        # (log P, P) in float64 from bigram.model: portable exp/log, so these are the
        # evaluate and sample stages' numbers. Cached: O(V²) exps per call otherwise.
        return model.distributions(self.W)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.vocab)}

    def _unknown(self, symbol: str, where: str) -> ValueError:
        return ValueError(
            f"{symbol!r}{where} is not in the model's vocabulary {''.join(self.vocab)!r}"
        )

    def probabilities(self, previous: str) -> dict[str, float]:
        """P(next | previous) for every next symbol, in vocabulary order, where
        `previous` is the last `context` symbols, oldest first. A name starts after
        '.' repeated (`"."` for the bigram, `".."` for k = 2; `".e"` is after a first
        'e'); '.' as next ends the name."""
        if not isinstance(previous, str) or len(previous) != self.context:
            raise ValueError(
                f"previous = {previous!r}: give the {self.context} symbol(s) before the next "
                f"one, oldest first ({'.' * self.context!r} starts a name)"
            )
        table = self._distributions[1]
        row = 0  # the name's start: k boundaries; the k symbols given then replace them all
        for symbol in previous:
            if symbol not in self._index:
                raise self._unknown(symbol, "" if len(previous) == 1 else f" (in {previous!r})")
            row = advance(row, self._index[symbol], len(table), len(self.vocab))
        return {s: float(p) for s, p in zip(self.vocab, table[row])}

    def table(self) -> "pandas.DataFrame":
        """P(next | context) as a pandas DataFrame: a row per context, labelled by its k
        symbols oldest first (`.` a name's start, `..` for k = 2), a column per next symbol
        in vocabulary order. pandas is imported here only (`pip install pandas`)."""
        try:
            import pandas
        except ImportError:
            raise PipelineError(
                "table() needs pandas, which is not installed: `pip install pandas` (or "
                "`pip install neural-bigram-pipeline[pandas]`)"
            ) from None
        P = self._distributions[1]
        rows = [label(r, self.context, self.vocab) for r in range(len(P))]
        return pandas.DataFrame(
            P,
            index=pandas.Index(rows, name="context"),
            columns=pandas.Index(self.vocab, name="next"),
        )

    def pairs(self, names: list[str]) -> np.ndarray:
        """The (2, N) int64 array of (previous, next) indices of every name wrapped in
        '.', as the prepare stage makes them, in this model's vocabulary: xs, ys for
        torch (int64 is what torch's cross_entropy wants for targets)."""
        if isinstance(names, str):  # nll("emma") would score four one-letter names
            raise ValueError("pass a list of names, not one string")
        if not names:
            raise ValueError("no names given")
        for name in names:
            if not isinstance(name, str):
                raise ValueError(f"{name!r} is not a string")
            if BOUNDARY in name:
                raise ValueError(f"{name!r} contains {BOUNDARY!r}, the name boundary symbol")
        # encode() numbers the symbols of these names; map them onto the model's numbering.
        seen, local = encode(names)
        for symbol in seen:
            if symbol not in self._index:
                name = next(n for n in names if symbol in n)
                raise self._unknown(symbol, f" (in {name!r})")
        to_model = np.array([self._index[s] for s in seen], dtype=np.int64)
        indices: np.ndarray = to_model[local]
        return indices

    def nll(self, names: list[str]) -> float:
        """Mean negative log-likelihood per symbol of `names` (each ended by '.', and
        started after `context` boundaries), computed from (context, next) counts as
        the evaluate stage does."""
        xs, ys = self.pairs(names)
        rows, V = self.W.shape
        contexts = context_rows(xs, self.context, V)
        counts = np.bincount(contexts * V + ys, minlength=rows * V).reshape(rows, V)
        return model.nll(counts, self._distributions[0])

    def sample(
        self, count: int, seed: int, max_length: int = 50, temperature: float = 1
    ) -> list[str]:
        """`count` names drawn with numpy's PCG64 under `seed`: exactly the names the
        sample stage writes to data/samples.txt with the same sample params (names are
        drawn one after another, so the first k of a larger count are the names of
        count=k). Arguments are checked by params.yaml's rules."""
        asked = {"count": count, "seed": seed, "max_length": max_length}
        for key, value in {**asked, "temperature": temperature}.items():
            check, allowed, _ = params.RULES[f"sample.{key}"]
            if not check(value):
                raise ValueError(f"sample(): {key} = {value!r} is not allowed; use {allowed}")
        P = (
            self._distributions[1]
            if temperature == 1
            else model.distributions(self.W / temperature)[1]
        )
        return sampling.spell(self.vocab, sampling.draw(P, count, seed, max_length))

    def torch_weights(self) -> "torch.Tensor":
        """W as a new float32 torch tensor (a copy: W itself stays read-only), e.g. to
        continue the lecture's training with `.requires_grad_()`. torch is not needed for
        anything else: without it this raises PipelineError saying how to install it."""
        try:
            import torch
        except ImportError:
            raise PipelineError(
                "torch_weights() needs torch, which is not installed: `pip install "
                "neural-bigram-pipeline[torch]` (on a CPU-only machine, first the CPU wheel: "
                "`pip install torch --index-url https://download.pytorch.org/whl/cpu`)"
            ) from None

        return torch.from_numpy(self.W.copy())


def load(path: str = artifacts.MODEL, rev: str | None = None, repo: str | None = None) -> Model:
    """The checkpoint at `path` (the pipeline's final model by default) as a Model.

    Without `rev`, `path` is used as given: relative to the current directory (or to
    `repo`), or absolute, so any checkpoint file can be loaded from anywhere. With `rev` (a
    git revision such as "HEAD" or a tag, or a DVC experiment name), the file is read as it
    was at that revision through DVC's API, from git and the local DVC cache: `path` is
    then relative to the project's root, and the project is `repo` (a directory, as for
    dvc.api.open; `~` is expanded) or, without it, the one the current directory is in.

    Checkpoints are safetensors, read with every metadata field checked: loading never
    unpickles or runs code. Raises PipelineError (one line, with the fix) if the file is
    missing, not in the local DVC cache, or not a checkpoint of this pipeline.
    """
    if repo is not None:
        where = os.path.expanduser(repo)
        if not os.path.isdir(where):
            raise PipelineError(f"repo={repo!r} is not a directory; give the project's folder")
        with contextlib.chdir(where):  # the project's paths and its git, as from inside it
            return load(path, rev)
    if rev is None:
        W, meta = checkpoint.read(path)
    else:
        W, meta = _parse_at(path, rev)
    W.setflags(write=False)  # a frozen Model whose W could be edited in place is not frozen
    return Model(vocab=list(meta["vocab"]), W=W, meta=meta)


def _parse_at(path: str, rev: str) -> tuple[np.ndarray, checkpoint.Meta]:
    # Imported here: reading at a revision (and DVC behind it) is needed only for rev reads.
    from bigram.revision import Source, git

    if outside_project(path):
        # Source would refuse it and then report "no such file at that revision".
        raise PipelineError(
            f"{path}: with rev={rev!r}, name the checkpoint by its path in the project "
            f"(e.g. {artifacts.MODEL}); a file outside the repository has no revisions"
        )
    if git("rev-parse", "--show-toplevel") is None:
        raise PipelineError(
            f"rev={rev!r} reads through git and DVC: run from inside the project's git "
            f"repository (the current directory {os.getcwd()} is not in one)"
        )
    source = Source(rev, named=f"rev={rev!r}")
    data = source.read(path, checkpoint.LIMIT)
    if data is None:
        raise PipelineError(source.why_missing(path))
    return checkpoint.parse(data, f"{path} at {rev}")
