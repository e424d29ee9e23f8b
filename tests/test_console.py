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


# --- the process's environment: closed streams, narrow encodings, resource limits ------

import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from bigram import console  # noqa: E402
from tests.conftest import env  # noqa: E402

BUSY = "from bigram.console import run\ndef main():\n    while True: pass\nrun(main)\n"
CHATTY = "from bigram.console import run\nrun(lambda: [print('line', i) for i in range(10**6)])\n"


def python(code, cwd=None, limits=(), **kw):
    def limit():
        for what, value in limits:
            resource.setrlimit(what, (value, resource.getrlimit(what)[1]))

    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**env(), **kw.pop("extra_env", {})},
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=60,
        **kw,
    )


def test_running_out_of_memory_is_one_line(capsys):
    def main():
        raise MemoryError

    with pytest.raises(SystemExit) as e:
        run(main)
    assert e.value.code == 1
    assert capsys.readouterr().err.startswith("error: out of memory (a memory limit such as")
    # while a library loads, before run(): the hook says the same
    console._hook(
        ImportError, ImportError("libx.so: failed to map segment from shared object"), None
    )
    assert capsys.readouterr().err.startswith("error: out of memory")


def test_a_memory_limit_too_small_to_start_is_refused_up_front(project):
    def prepare_under(mib):
        return python(
            "import runpy, sys; sys.argv = ['prepare']; "
            "runpy.run_module('stages.prepare', run_name='__main__')",
            cwd=project,
            limits=[(resource.RLIMIT_AS, mib * 2**20)],
        )

    # Under 256 MiB numpy fails half-loaded, with errors that do not name memory.
    for mib in (60, 90, 255):
        r = prepare_under(mib)
        assert r.returncode == 1 and r.stderr.splitlines() == [
            f"error: the memory limit (`ulimit -v`) is {mib} MiB; this pipeline needs at least "
            "256 MiB to start (up to 2 GiB per stage on the largest inputs): raise it"
        ]
    assert prepare_under(256).returncode == 0  # the toy list fits


def test_out_of_cpu_time_is_one_line_and_exit_152():
    # as `ulimit -t 2` sets it: soft and hard alike, so the kernel's SIGKILL would follow
    def both():
        resource.setrlimit(resource.RLIMIT_CPU, (2, 2))

    r = subprocess.run(
        [sys.executable, "-c", BUSY],
        env=env(),
        capture_output=True,
        text=True,
        preexec_fn=both,
        timeout=60,
    )
    assert r.returncode == 152
    assert r.stderr.strip() == (
        "error: out of CPU time (`ulimit -t`): raise the limit; outputs are as they were "
        "before this run"
    )


def test_a_file_size_limit_is_named_and_leaves_no_temporary_file(project):
    r = python(
        "import runpy, sys; sys.argv = ['prepare']; "
        "runpy.run_module('stages.prepare', run_name='__main__')",
        cwd=project,
        limits=[(resource.RLIMIT_FSIZE, 100)],
    )
    assert r.returncode == 1
    (line,) = r.stderr.splitlines()
    assert "over the file size limit (`ulimit -f`); raise the limit and run again" in line
    assert not list(project.rglob("*.tmp")) and not (project / "data/prepared").exists()


def test_a_closed_reader_ends_the_command_quietly():
    p = subprocess.Popen(
        [sys.executable, "-c", CHATTY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        text=True,
    )
    assert p.stdout.readline() == "line 0\n"
    p.stdout.close()  # `| head -1`
    assert p.wait(timeout=60) == 141
    assert p.stderr.read() == ""


def test_a_closed_stdout_and_a_narrow_encoding_are_not_crashes():
    code = "from bigram.console import run, progress\nrun(lambda: progress('sample', 'Zoë'))\n"
    narrow = python(code, extra_env={"PYTHONIOENCODING": "ascii"})
    assert narrow.returncode == 0 and narrow.stdout == "[sample] Zo\\xeb\n"
    closed = subprocess.run(
        ["bash", "-c", f'{sys.executable} -c "$0" >&-', code],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert closed.returncode == 0 and closed.stderr == ""


def test_a_stage_whose_reader_went_away_still_finishes_its_outputs(trained_project):
    before = (trained_project / "models/model.safetensors").read_bytes()
    (trained_project / "models/model.safetensors").unlink()
    p = subprocess.Popen(
        [sys.executable, "-m", "stages.train"],
        cwd=trained_project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    p.stdout.close()  # `python -m stages.train | true`
    assert p.wait(timeout=120) == 0
    assert p.stderr.read() == b""
    assert (trained_project / "models/model.safetensors").read_bytes() == before
