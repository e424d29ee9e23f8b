import math
import re

import pytest
import yaml

from bigram import params
from bigram.console import PipelineError
from tests.conftest import ROOT


def shipped():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def with_change(key, value):
    p = shipped()
    section, name = key.split(".")
    if value is DELETE:
        del p[section][name]
    else:
        p[section][name] = value
    return p


DELETE = object()


def test_shipped_params_are_the_documented_defaults_and_valid():
    assert shipped() == params.defaults()
    assert params.validate(shipped()) == shipped()


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.learning_rate", 1, r"unknown key train.learning_rate; the train keys are seed, lr"),
        ("train.lr", DELETE, r"missing key train.lr; add it \(a finite number > 0, default 50\)"),
        ("train.lr", "fast", r"train.lr = 'fast' is not allowed; use a finite number > 0"),
        ("train.lr", True, r"train.lr = True is not allowed"),
        ("train.lr", 0, r"train.lr = 0 is not allowed"),
        ("train.lr", -1.5, r"train.lr = -1.5 is not allowed"),
        ("train.lr", math.inf, r"train.lr = inf is not allowed"),
        ("train.reg", math.nan, r"train.reg = nan is not allowed; use a finite number >= 0"),
        ("train.steps", 0, r"train.steps = 0 is not allowed; use an integer from 1 to 10,000,000"),
        (
            "train.steps",
            10**11,
            r"train.steps = 100000000000 is not allowed; use an integer from 1 to",
        ),
        ("train.steps", 2.5, r"train.steps = 2.5 is not allowed"),
        (
            "split.train",
            1.0,
            r"split.train = 1.0 is not allowed; use a number strictly between 0 and 1",
        ),
        ("split.dev", 0, r"split.dev = 0 is not allowed"),
        ("split.dev", 0.2, r"split.train \+ split.dev = 1 leaves no test split"),
        ("split.unit", "words", r"split.unit = 'words' is not allowed; use 'pairs' or 'names'"),
        ("split.seed", 4.2, r"split.seed = 4.2 is not allowed; use an integer"),
        ("sample.seed", "42", r"sample.seed = '42' is not allowed"),
        ("sample.count", 0, r"sample.count = 0 is not allowed; use an integer from 1 to 1,000,000"),
        (
            "train.checkpoint_every",
            0,
            r"train.checkpoint_every = 0 is not allowed; use an integer >= 1",
        ),
        ("compare.smoothing", 0, r"compare.smoothing = 0 is not allowed"),
        (
            "compare.smoothing",
            1e-320,
            r"compare.smoothing = 1e-320 is not allowed; use a finite "
            r"number >= 1e-9",
        ),
        ("compare.fit", "dev", r"compare.fit = 'dev' is not allowed; use 'train' or 'all'"),
        ("data.names", None, r"data.names = None is not allowed"),
    ],
)
def test_bad_params_are_named_with_value_and_allowed_range(key, value, message):
    with pytest.raises(PipelineError, match=r"^params.yaml: " + message) as e:
        params.validate(with_change(key, value))
    assert len(str(e.value).splitlines()) == 1


def test_every_problem_is_listed_one_line_each():
    p = with_change("train.lr", "fast")
    p["sample"]["count"] = 0
    p["bogus"] = {}
    lines = str(pytest.raises(PipelineError, params.validate, p).value).splitlines()
    assert len(lines) == 3


def test_load_reports_invalid_yaml_with_its_line(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("train:\n  lr: [1\n")
    with pytest.raises(PipelineError, match=r"is not valid YAML at line \d+"):
        params.load(f)


def test_numbers_in_exponent_form_are_numbers_as_in_dvc(tmp_path):
    f = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text().replace("reg: 0.01 ", "reg: 1e-3 ")
    assert "reg: 1e-3" in text
    f.write_text(text.replace("lr: 50 ", "lr: 5E+1 "))
    p = params.load(f)
    assert p.train.reg == 0.001 and p.train.lr == 50.0
    assert p.split.seed == 42 and isinstance(p.split.seed, int)


def test_a_sample_too_long_to_draw_is_refused_up_front_and_its_bound_is_accepted():
    raw = params.defaults()
    raw["sample"].update(count=1_000_000, max_length=100_000)  # both allowed alone
    with pytest.raises(PipelineError) as e:
        params.validate(raw)
    assert str(e.value) == (
        "params.yaml: sample.count × sample.max_length = 1,000,000 × 100,000 = 1e+11 symbols "
        "at most; the limit is 50,000,000 (under a minute and 1 GiB here): lower either"
    )
    raw["sample"].update(count=1_000_000, max_length=50)  # 5e7: the bound itself
    assert params.validate(raw) is raw


def test_flatten_names_params_as_dvc_does():
    nested = {"train": {"lr": 50, "reg": 0.01}, "tool": {"bigram": {"pins": {"numpy": "2.4.6"}}}}
    assert params.flatten(nested) == {
        "train.lr": 50,
        "train.reg": 0.01,
        "tool.bigram.pins.numpy": "2.4.6",
    }
    assert params.flatten({"tool.bigram.pins.numpy": "2.4.6"}) == {
        "tool.bigram.pins.numpy": "2.4.6"
    }
    assert params.flatten(None) == {} and params.flatten(["a"]) == {}


def test_the_documented_params_table_is_the_declared_params():
    """The docs' params table lists every declared param, in params.yaml's order, with its
    declared default (the rules themselves are written once, in bigram/params.py)."""
    rows = [
        line.split("|")[1:3]
        for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for line in doc.read_text().splitlines()
        if re.match(r"\| `[a-z]+\.[a-z_]+` \|", line)
    ]
    documented = {key.strip().strip("`"): default.strip().strip("`") for key, default in rows}
    assert list(documented) == list(params.RULES)
    for key, rule in params.RULES.items():
        assert params.parse_yaml(documented[key].encode(), key) == rule.default, key
