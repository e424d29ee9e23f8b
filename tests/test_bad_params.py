"""A params.yaml that is broken, hostile or asks for the impossible: refused in one exact
line naming the key or the file and the fix, before any output changes; and what it
says is read as DVC reads it."""

import pytest

from tests.conftest import error_line, read_json, set_params, snapshot, stage

# --- the params.yaml file --------------------------------------------------------------


def billion_laughs(text):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return (text + "\n".join(lines) + "\n").encode()


REFUSED_FILES = {  # case -> (params.yaml's text -> its new bytes, the exact message)
    "empty": (
        lambda text: b"# nothing here\n",
        "params.yaml is empty; restore it (`git checkout params.yaml`) or write its sections "
        "(data, split, model, train, compare, sample)",
    ),
    "utf-16": (
        lambda text: text.encode("utf-16"),
        "params.yaml is UTF-16 or UTF-32 text (or binary); save it as UTF-8",
    ),
    # refused at once: expanding the aliases would take minutes and gigabytes
    "a billion laughs": (
        billion_laughs,
        "params.yaml uses YAML anchors and aliases (&name, *name); write each value out",
    ),
}


@pytest.mark.parametrize("case", REFUSED_FILES)
def test_a_params_file_that_cannot_be_read_is_one_line(project, case):
    edit, message = REFUSED_FILES[case]
    path = project / "params.yaml"
    path.write_bytes(edit(path.read_text()))
    assert error_line(stage(project, "prepare", check=False, timeout=30)) == message
    assert not (project / "data/prepared").exists()


def test_params_yaml_that_is_a_directory(project):
    (project / "params.yaml").unlink()
    (project / "params.yaml").mkdir()
    assert error_line(stage(project, "prepare", check=False)) == (
        "params.yaml is a directory, not a file; run from the project root, where params.yaml is"
    )


def test_params_over_the_size_limit_is_refused_unread(project):
    with open(project / "params.yaml", "ab") as f:
        f.write(b"#" * (50 * 2**20))
    line = error_line(stage(project, "prepare", check=False))
    assert line.startswith("params.yaml is 52,4")
    assert line.endswith(
        "bytes, over the limit of 65,536; run from the project root, where params.yaml is"
    )


def test_duplicate_keys_are_refused_as_dvc_refuses_them(project):
    from dvc.utils.serialize import YAMLError
    from dvc.utils.serialize import parse_yaml as dvc_parse

    text = (project / "params.yaml").read_text().replace("  lr: 50", "  lr: 50\n  lr: 10")
    with pytest.raises(YAMLError):
        dvc_parse(text, "params.yaml")
    (project / "params.yaml").write_text(text)
    line = error_line(stage(project, "prepare", check=False))
    assert line.startswith("params.yaml line ")
    assert line.endswith(": a key appears twice in one mapping, which DVC refuses; keep one")


# --- params are read as DVC reads them --------------------------------------------------

TRICKY = [
    "split:\n  seed: 010\n",
    "split:\n  seed: 0o10\n",
    "train:\n  reg: 1e-3\n",
    "train:\n  lr: 5E+1\n",
    "sample:\n  count: 1_000\n",
    "compare:\n  fit: yes\n",
    "split:\n  unit: on\n",
    "train:\n  lr: .5\n",
    "train:\n  lr: 0x10\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_the_stages_read_params_as_dvc_does(text):
    from dvc.utils.serialize import parse_yaml as dvc_parse

    from bigram.params import parse_yaml

    assert parse_yaml(text.encode(), "params.yaml") == dvc_parse(text, "params.yaml")


def test_a_seed_written_010_trains_with_the_seed_dvc_shows(trained):
    text = (trained / "params.yaml").read_text().replace("seed: 42", "seed: 010", 2)
    (trained / "params.yaml").write_text(text)
    stage(trained, "split")
    assert read_json(trained / "data/split/lineage.json")[1]["params"]["split"]["seed"] == 10


# --- keys and values ---------------------------------------------------------------------


def test_a_bad_param_stops_the_first_stage_before_any_work(project):
    set_params(project, train__learning_rate=1)
    assert error_line(stage(project, "prepare", check=False)) == (
        "params.yaml: unknown key train.learning_rate; the train keys are seed, lr, reg, steps, "
        "checkpoint_every"
    )
    assert not (project / "data/prepared").exists()


def test_fractions_that_leave_a_split_empty(project):
    stage(project, "prepare")
    set_params(project, split__dev=0.005)  # int(0.005 * 130 pairs) = 0
    assert error_line(stage(project, "split", check=False)) == (
        "params.yaml: split.train = 0.8, split.dev = 0.005 leave the dev split empty for "
        "130 pairs; use other fractions or a larger names file"
    )
    set_params(project, split__dev=0.1, split__train=0.85, split__unit="names")  # 20 names: 17+2+1
    stage(project, "split")
    set_params(project, split__dev=0.04)  # int(0.04 * 20 names) = 0
    assert error_line(stage(project, "split", check=False)) == (
        "params.yaml: split.train = 0.85, split.dev = 0.04 leave the dev split empty for 20 names; "
        "use other fractions or a larger names file"
    )


def test_checkpoint_every_step_of_a_long_run_is_refused_up_front(trained):
    set_params(trained, train__steps=20_000, train__checkpoint_every=1)
    before = snapshot(trained)
    assert error_line(stage(trained, "train", check=False)) == (
        "params.yaml: train.steps = 20,000 with train.checkpoint_every = 1 writes 20,001 "
        "checkpoints; the limit is 10,000: raise train.checkpoint_every"
    )
    assert snapshot(trained) == before


@pytest.fixture
def split_project(project):
    stage(project, "prepare")
    stage(project, "split")
    return project


def test_divergence_stops_with_the_step_and_writes_no_checkpoint(split_project):
    set_params(split_project, train__lr=1e6)
    line = error_line(stage(split_project, "train", check=False))
    assert line.startswith("train diverged at step ")
    assert line.endswith("; lower train.lr (now 1000000.0) in params.yaml")
    assert not (split_project / "models").exists()


def test_a_loss_that_explodes_without_overflowing_is_divergence_too(split_project):
    set_params(split_project, train__lr=40000)  # finite, but the loss climbs into the thousands
    line = error_line(stage(split_project, "train", check=False))
    assert line.startswith("train diverged at step ") and "lower train.lr (now 40000)" in line
    assert not (split_project / "models").exists()
