"""bigram.cli: one console command whose subcommands are the tools."""

import shutil
import subprocess
import sys
import tomllib

import pytest

from bigram.cli import main
from tests import conftest
from tests.conftest import ROOT, env


def bigram(*args, cwd=ROOT):
    """`python -m bigram <args>`, run in this process (conftest.bigram)."""
    return conftest.bigram(cwd, *args)


def test_exactly_one_console_command_and_it_is_python_m_bigram():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"bigram": "bigram.cli:main"}
    # a real `python -m bigram`: bigram/__main__.py is the command
    r = subprocess.run(
        [sys.executable, "-m", "bigram", "--help"],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0
    assert "lineage" in r.stdout and "select" in r.stdout
    assert r.stdout == bigram("--help").stdout


def test_every_subcommand_has_help():
    lineage = bigram("lineage", "--help")
    assert lineage.returncode == 0
    for flag in ("--verify", "--json", "--rev", "checkpoint"):
        assert flag in lineage.stdout
    select = bigram("select", "--help")
    assert select.returncode == 0
    for flag in ("--json", "--model", "--by"):
        assert flag in select.stdout


def test_select_by_a_key_that_is_not_a_param_is_one_line(tmp_path):
    r = bigram("select", "--by", "model.ctx", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        "error: --by model.ctx: not a param of params.yaml; name one as section.key, "
        "e.g. model.context or train.reg"
    )


def test_an_unknown_subcommand_is_refused_in_usage_form():
    r = bigram("train")
    assert r.returncode == 2
    assert "invalid choice: 'train'" in r.stderr and "Traceback" not in r.stderr


def test_a_missing_checkpoint_is_one_line(tmp_path):
    r = bigram("lineage", "nope.safetensors", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "error: nope.safetensors: not found in the workspace; if it is a DVC output, "
        "`dvc checkout` or `dvc pull` restores it"
    ]


def test_a_schema_1_checkpoint_is_shown_and_verify_says_what_would_verify_it(
    tmp_path, monkeypatch, capsys
):
    shutil.copy(ROOT / "tests/data/checkpoint-schema1.safetensors", tmp_path / "old.safetensors")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path)
    main(["lineage", "old.safetensors"])
    shown = capsys.readouterr().out
    assert "(schema 1)" in shown and "code git 54563242b5d6 (clean)" in shown
    with pytest.raises(SystemExit) as e:
        main(["lineage", "--verify", "old.safetensors"])
    assert e.value.code == 2
    assert capsys.readouterr().out.strip() == (
        "not checked: old.safetensors was written by checkpoint schema 1 (code commit "
        "54563242b5d6); this code writes schema 2 and cannot re-derive it: check out the code "
        "that made it (`git worktree add ../v1 54563242b5d6`) and run `bigram lineage --verify` "
        "there"
    )


def test_check_has_help():
    r = bigram("check", "--help")
    assert r.returncode == 0 and "--rev" in r.stdout and "--json" in r.stdout
