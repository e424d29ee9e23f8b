"""bigram.console: expected errors and Ctrl-C end in one line and an exit code."""

import pytest

from bigram.console import PipelineError, run
from bigram.stage import run_stage


def test_a_pipeline_error_is_one_line_per_problem_and_exit_1(capsys):
    def main():
        raise PipelineError("params.yaml: train.lr = 0 is not allowed\nparams.yaml: another")

    with pytest.raises(SystemExit) as e:
        run(main)
    assert e.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: params.yaml: train.lr = 0 is not allowed",
        "error: params.yaml: another",
    ]


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    def main():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as e:
        run(main)
    assert e.value.code == 130
    assert capsys.readouterr().err.startswith("interrupted;")


def test_a_bug_keeps_its_traceback():
    def main():
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run(main)


def test_a_stage_takes_no_arguments(capsys):
    ran = []
    with pytest.raises(SystemExit) as e:
        run_stage("train", lambda: ran.append(1), "Stage 3, train.", ["--lr", "1"])
    assert e.value.code == 2 and ran == []
    run_stage("train", lambda: ran.append(1), "Stage 3, train.", [])
    assert ran == [1]
