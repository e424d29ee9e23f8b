"""bigram.api: a checkpoint as a Python object, with the stages' own numbers."""

import contextlib
import io
import json
import math
import os
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bigram import artifacts, checkpoint, params
from bigram.api import Model, load
from bigram.console import PipelineError
from bigram.model import distributions, log_softmax, nll
from bigram.names import encode
from tests.conftest import NOTEBOOK_NAMES, ROOT, read_json, set_params, stage

HEADING = "# Using the model from Python"

# The README's example, verbatim (test_readme_carries_the_example keeps them equal), and
# what it prints in a project trained with the shipped params and 20-name data/names.txt.
EXAMPLE = """\
from bigram.api import load

model = load("models/model.safetensors")  # or load(rev="HEAD"): at a git revision or experiment
print(model.vocab[:4], model.W.shape, model.meta["step"])
p = model.probabilities(".")  # P(first letter of a name)
print(max(p, key=p.get), round(p["e"], 3))
print(round(model.nll(["emma", "olivia"]), 4))  # mean NLL per bigram, as evaluate computes it
print(model.sample(5, seed=42))  # the first 5 names of data/samples.txt (sample.seed 42)

# Continue the lecture in torch: ten more gradient steps on W, on every name's bigrams.
import torch
import torch.nn.functional as F

xs, ys = torch.from_numpy(model.pairs(open("data/names.txt").read().splitlines()))
W = model.torch_weights().requires_grad_()
for _ in range(10):
    loss = F.cross_entropy(W[xs], ys) + 0.01 * (W**2).mean()
    W.grad = None
    loss.backward()
    W.data += -50 * W.grad
print(round(loss.item(), 3))
"""
EXAMPLE_OUTPUT = """\
['.', 'a', 'b', 'c'] (21, 21) 200
e 0.332
2.0748
['miviavisaily', 'olamerphavisamelophaila', 'elolun', 'otharia', 'miluna']
1.595
"""


@pytest.fixture
def model(trained_project, monkeypatch):
    monkeypatch.chdir(trained_project)
    return load()


def test_load_reads_the_final_checkpoint(model):
    W, meta = checkpoint.read()
    assert isinstance(model, Model)
    assert model.vocab == artifacts.read_vocab() == meta["vocab"]
    assert model.W.dtype == np.float32 and model.W.shape == (21, 21)
    assert model.W.tobytes() == W.tobytes()
    assert model.meta == meta and model.meta["step"] == 200
    assert not model.W.flags.writeable  # frozen means frozen
    with pytest.raises(ValueError):
        model.W[0, 0] = 1
    assert repr(model) == "Model(V=21, context=1, step=200)"  # not 441 numbers and the lineage


def test_load_by_absolute_path_from_another_directory(trained_project, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    final = load(str(trained_project / artifacts.MODEL))
    assert final.meta["step"] == 200
    early = load(str(trained_project / artifacts.checkpoint_path(50)))
    assert early.meta["step"] == 50 and early.W.tobytes() != final.W.tobytes()
    with pytest.raises(PipelineError, match="no such file"):
        load()  # the default path is relative: there is no models/ here


def test_load_refuses_a_missing_file_and_never_unpickles(trained_project, tmp_path, monkeypatch):
    monkeypatch.chdir(trained_project)
    with pytest.raises(PipelineError, match=r"^models/nope.safetensors: no such file"):
        load("models/nope.safetensors")

    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # creates `marker` if ever unpickled

    forged = tmp_path / "model.safetensors"
    forged.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(PipelineError, match="is not a checkpoint of this pipeline"):
        load(str(forged))
    assert not marker.exists()


def test_probabilities_are_the_rows_of_the_portable_softmax(model):
    P = distributions(model.W)[1]
    for i, previous in enumerate(model.vocab):
        p = model.probabilities(previous)
        assert list(p) == model.vocab
        assert list(p.values()) == P[i].tolist()
        assert math.isclose(sum(p.values()), 1, abs_tol=1e-12)
    # '.' as previous is the start of a name: a name never starts by ending here.
    start = model.probabilities(".")
    assert max(start, key=start.get) == "e"


def test_an_unknown_symbol_is_named_with_the_vocabulary(model):
    with pytest.raises(ValueError, match=re.escape("'Z' is not in the model's vocabulary")):
        model.probabilities("Z")
    with pytest.raises(ValueError, match=re.escape("'.abcefghilmnoprstuvyz'")):
        model.probabilities("Z")


@pytest.mark.parametrize("previous", ["ab", "", ["a"]])
def test_previous_must_be_as_many_symbols_as_the_context(model, previous):
    with pytest.raises(ValueError, match=re.escape("give the 1 symbol(s) before the next one")):
        model.probabilities(previous)


def counts_of(names, vocab):
    """Bigram counts of `names` in `vocab`'s numbering, the long way: encode + np.add.at."""
    seen, pairs = encode(names)
    to_model = np.array([vocab.index(s) for s in seen])
    counts = np.zeros((len(vocab), len(vocab)), dtype=np.int64)
    np.add.at(counts, (to_model[pairs[0]], to_model[pairs[1]]), 1)
    return counts


@pytest.mark.parametrize(
    "names", [NOTEBOOK_NAMES, ["emma"], ["ava", "ava", "zia"], ["", "l"], ["mia", "emily"] * 7]
)
def test_nll_is_what_evaluate_computes_from_counts(model, names):
    expected = nll(counts_of(names, model.vocab), log_softmax(model.W))
    assert model.nll(names) == expected
    # and the definition, pair by pair: mean of -log P(next | previous)
    pairs = [(a, b) for name in names for a, b in zip("." + name, name + ".")]
    by_hand = -sum(math.log(model.probabilities(a)[b]) for a, b in pairs) / len(pairs)
    assert math.isclose(model.nll(names), by_hand, rel_tol=1e-12)


@pytest.fixture
def trigram(trained_project, monkeypatch):
    """The toy project retrained with model.context = 2."""
    set_params(trained_project, model__context=2)
    for name in ("split", "train", "evaluate", "sample"):
        stage(trained_project, name)
    monkeypatch.chdir(trained_project)
    return load()


def test_a_trigram_model_takes_two_previous_symbols_and_gives_the_stages_numbers(trigram):
    assert trigram.context == 2 and trigram.W.shape == (441, 21)
    assert repr(trigram) == "Model(V=21, context=2, step=200)"
    names = open("data/names.txt").read().splitlines()
    assert trigram.nll(names) == read_json(artifacts.metrics_path("evaluate"))["all"]["nll"]
    assert trigram.sample(20, seed=42) == open(artifacts.SAMPLES).read().splitlines()
    # the definition, symbol by symbol: the context is the two before, '.'-padded
    examples = [
        (w[i : i + 2], w[i + 2])
        for name in names
        for w in [".." + name + "."]
        for i in range(len(name) + 1)
    ]
    by_hand = -sum(math.log(trigram.probabilities(c)[n]) for c, n in examples) / len(examples)
    assert math.isclose(trigram.nll(names), by_hand, rel_tol=1e-12)
    for wrong in (".", "...", "e"):
        with pytest.raises(ValueError, match=r"give the 2 symbol\(s\) before the next one"):
            trigram.probabilities(wrong)
    with pytest.raises(ValueError, match=r"'Z' \(in 'eZ'\) is not in the model's vocabulary"):
        trigram.probabilities("eZ")


def test_nll_of_the_names_file_is_evaluates_all_nll(model):
    names = open("data/names.txt").read().splitlines()
    assert model.nll(names) == read_json(artifacts.metrics_path("evaluate"))["all"]["nll"]


@pytest.mark.parametrize(
    "names, message",
    [
        (
            ["emma", "zoë"],
            "'ë' (in 'zoë') is not in the model's vocabulary '.abcefghilmnoprstuvyz'",
        ),
        (["j.r."], "'j.r.' contains '.', the name boundary symbol"),
        ("emma", "pass a list of names, not one string"),
        ([], "no names given"),
        (["emma", None], "None is not a string"),
    ],
)
def test_nll_refuses_names_it_cannot_score(model, names, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        model.nll(names)


def test_pairs_are_the_prepare_stages_pairs(model):
    # The 20 names have the model's whole vocabulary, so encode numbers symbols alike.
    assert model.pairs(NOTEBOOK_NAMES).tolist() == np.load(artifacts.PAIRS).tolist()
    assert model.pairs(NOTEBOOK_NAMES).dtype == np.int64


def test_sample_is_the_sample_stages_names(model):
    written = open(artifacts.SAMPLES).read().splitlines()
    assert params.load().sample == params.SampleParams(
        seed=42, count=20, max_length=50, temperature=1
    )
    assert model.sample(20, 42, 50) == written
    assert model.sample(20, seed=42) == written  # max_length's default is params.yaml's
    assert params.RULES["sample.max_length"][2] == 50
    assert model.sample(5, seed=42) == written[:5]  # drawn one after another
    assert model.sample(20, seed=7) != written
    assert all(len(name) <= 3 for name in model.sample(50, seed=1, max_length=3))
    assert model.sample(20, 42, 50, temperature=1) == written
    assert model.sample(20, 42, 50, temperature=0.5) != written


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, 42), "count = 0 is not allowed; use an integer from 1 to 1,000,000"),
        ((5, -1), "seed = -1 is not allowed"),
        ((5, True), "seed = True is not allowed"),
        ((5, 42, 0), "max_length = 0 is not allowed"),
    ],
)
def test_sample_refuses_what_params_yaml_would(model, args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        model.sample(*args)


def test_torch_weights_are_a_copy_whose_softmax_is_probabilities(model):
    import torch

    t = model.torch_weights()
    assert t.dtype == torch.float32 and t.shape == (21, 21)
    P = torch.softmax(t, 1)
    for i, previous in enumerate(model.vocab):
        expected = torch.tensor(list(model.probabilities(previous).values()), dtype=torch.float64)
        assert torch.allclose(P[i].double(), expected, rtol=0, atol=1e-6)
    t += 1  # the tensor is the caller's; the model's W is untouched
    assert model.W.tobytes() == checkpoint.read()[0].tobytes()


def test_import_works_anywhere_without_torch_or_dvc(tmp_path):
    code = (
        "import sys, bigram.api; "
        "assert 'torch' not in sys.modules and 'dvc' not in sys.modules, sorted(sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_readme_example_runs_and_prints_what_the_readme_says(trained_project, monkeypatch):
    monkeypatch.chdir(trained_project)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(EXAMPLE, "README example", "exec"), {"__name__": "__main__"})
    assert out.getvalue() == EXAMPLE_OUTPUT


def first_python_block(markdown, heading):
    """The first ```python block of the section under `heading` (None without one)."""
    section = markdown.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^```python\n(.*?)^```$", section, re.S | re.M)
    return found and found.group(1)


def test_the_docs_carry_the_example():
    page = "\n" + (ROOT / "docs/python-api.md").read_text()
    assert f"\n{HEADING}\n" in page
    assert first_python_block(page, HEADING) == EXAMPLE
    assert EXAMPLE_OUTPUT in page


def test_a_rev_read_needs_a_git_repository(trained_project, monkeypatch):
    monkeypatch.chdir(trained_project)  # a trained project, but not a git repo
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(trained_project.parent))
    with pytest.raises(PipelineError, match="inside the project.s git repository"):
        load(rev="HEAD")


def test_a_rev_read_takes_a_path_in_the_project(trained_project):
    with pytest.raises(PipelineError, match="by its path in the project"):
        load(str(trained_project / artifacts.MODEL), rev="HEAD")
    with pytest.raises(PipelineError, match="by its path in the project"):
        load("../elsewhere/model.safetensors", rev="HEAD")


@pytest.mark.slow
def test_load_at_a_git_revision_reads_the_committed_run(trained_repo, monkeypatch):
    monkeypatch.chdir(trained_repo)
    committed = load()
    # Change the workspace: rev="HEAD" must still read the committed run, from the DVC cache.
    shutil.copy(artifacts.checkpoint_path(50), artifacts.MODEL)
    assert load().meta["step"] == 50
    (trained_repo / artifacts.MODEL).unlink()
    at_head = load(rev="HEAD")
    assert at_head.meta == committed.meta and at_head.meta["step"] == 200
    assert at_head.W.tobytes() == committed.W.tobytes()
    assert at_head.sample(20, seed=42) == open(artifacts.SAMPLES).read().splitlines()
    assert load(artifacts.checkpoint_path(50), rev="HEAD").meta["step"] == 50
    with pytest.raises(PipelineError, match=r"^models/nope.safetensors: not found at HEAD"):
        load("models/nope.safetensors", rev="HEAD")
    with pytest.raises(PipelineError, match=r"^rev='no-such-rev': no such git revision"):
        load(rev="no-such-rev")
    assert json.loads(json.dumps(at_head.meta)) == at_head.meta  # plain JSON, nothing else
    # From a notebook outside the project: repo= as dvc.api.open has it.
    monkeypatch.chdir(trained_repo.parent)
    elsewhere = load(rev="HEAD", repo=str(trained_repo))
    assert elsewhere.W.tobytes() == committed.W.tobytes() and elsewhere.meta == committed.meta
    assert load(artifacts.checkpoint_path(50), repo=str(trained_repo)).meta["step"] == 50
    assert os.getcwd() == str(trained_repo.parent)  # and the notebook stays where it was
    with pytest.raises(PipelineError, match=r"^repo='nowhere' is not a directory"):
        load(rev="HEAD", repo="nowhere")


def test_the_table_is_p_labelled_by_context_and_next_symbol(model):
    table = model.table()
    assert list(table.columns) == model.vocab and table.columns.name == "next"
    assert table.index.name == "context" and len(table) == len(model.vocab) ** model.context
    for context in (".", "a", "e"):
        assert table.loc[context].to_dict() == model.probabilities(context)


def test_a_trigram_tables_rows_are_two_symbol_contexts(trigram):
    table = trigram.table()
    assert table.index[0] == ".." and table.index[1] == ".a"
    assert table.loc[".e"].to_dict() == trigram.probabilities(".e")
