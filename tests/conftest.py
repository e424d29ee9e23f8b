import gc
import inspect
import io
import json
import os
import resource
import runpy
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REAL_NAMES = ROOT.parent / "shared" / "data" / "names.txt"
NOTEBOOK_NAMES = [
    "emma",
    "olivia",
    "ava",
    "isabella",
    "sophia",
    "mia",
    "charlotte",
    "amelia",
    "harper",
    "evelyn",
    "abigail",
    "emily",
    "ella",
    "elizabeth",
    "camila",
    "luna",
    "sofia",
    "avery",
    "mila",
    "aria",
]
PROJECT_FILES = [
    "bigram",
    "stages",
    "pyproject.toml",
    "dvc.yaml",
    "params.yaml",
    "data/names.txt",
    ".dvc/config",
    ".dvc/plots.html",
    ".dvc/plots",
    ".dvc/.gitignore",
    ".dvcignore",
]
# The stage list lives in dvc.yaml only.
STAGES = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


def pytest_collection_finish(session):
    """torch, which the tests use as the notebook's reference, on one thread: its tensors
    here are tiny, and two threads per pytest-xdist worker on a two-core machine spin
    against each other (the notebook's loops took 1-6 s instead of 0.2 s). Only this
    process: the stages never import torch, and subprocesses keep their environment."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    # What collection imported (torch, dvc, numpy, the test modules) lives as long as the
    # session: out of the garbage collector's sight, so that full collections during the
    # tests and the one at exit do not walk it again (torch's exit took 0.5 s, 0.1 s so).
    gc.freeze()


# --- where the tests' files go -----------------------------------------------------------


def _in_memory_temp_root():
    """tmp_path in memory when the machine has a tmpfs at /dev/shm: most tests copy the
    project (~60 files) and run stages that write and fsync their outputs; on this VM's
    disk a copy took 10-50 ms, varying with other I/O (8 s of the quick loop's 21), and
    3 ms on tmpfs. Only pytest's temporary root moves: Python's tempfile (the product's
    scratch directories) stays where it is. A PYTEST_DEBUG_TEMPROOT set by hand wins."""
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1:3] for line in f]
    if ["/dev/shm", "tmpfs"] in mounts and os.access("/dev/shm", os.W_OK | os.X_OK):
        os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", "/dev/shm")


if os.path.exists("/proc/self/mounts"):
    _in_memory_temp_root()

# A passed test's tmp_path is removed when it ends, as tmp_path_retention_policy = "failed"
# would at the session's end, but spread over the workers: a session's ~220 project copies
# are ~290 MB and 13,000 files, which pytest kept for three sessions (in memory, now) and
# deleted at a later session's end, one after the other (~2 s on the disk). A failed test
# keeps its tmp_path, for a look at what it left.
_OUTCOMES = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(_OUTCOMES, {})[report.when] = report.passed
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    path = (getattr(item, "funcargs", None) or {}).get("tmp_path")
    result = yield
    outcomes = item.stash.get(_OUTCOMES, {})
    if path is not None and outcomes.get("setup") and outcomes.get("call"):
        shutil.rmtree(path, ignore_errors=True)
    return result


def env():
    """The test's interpreter first on PATH, so dvc.yaml's `python` is this venv's."""
    e = dict(os.environ)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e["DVC_NO_ANALYTICS"] = "1"
    return e


def sh(args, cwd, check=True, timeout=None):
    r = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def dvc(cwd, *args, check=True):
    return sh([sys.executable, "-m", "dvc", *args], cwd, check)


def stage(cwd, name, *args, check=True, process=False, timeout=None):
    """`python -m stages.<name> [args]` run in `cwd`: a CompletedProcess with text output.

    In this process by default, as `python -m` would run it: the module runs as
    `__main__` (runpy), so its own `run_stage(...)` line, argument parsing and error
    handling are what run; stdout and stderr are captured, SystemExit is the exit code,
    and an uncaught exception fails the test (in a process it would be a traceback).
    The code that runs is this checkout's, which copy_project copied to `cwd`.
    process=True starts a real interpreter instead, for what only a process shows:
    signals, resource limits, closed pipes, the environment, the modules a fresh
    start imports."""
    argv = [sys.executable, "-m", f"stages.{name}", *args]
    if process:
        return sh(argv, cwd, check, timeout)

    def as_main():
        # Not imported yet, as in a new interpreter (else runpy warns that it is, on stderr)
        module = f"stages.{name}"
        imported = sys.modules.pop(module, None)
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        finally:
            if imported is not None:
                sys.modules[module] = imported

    sys_argv = [str(Path(cwd, "stages", f"{name}.py")), *args]
    r = in_process(argv, cwd, as_main, sys_argv=sys_argv, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{argv} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def bigram(cwd, *args, check=False, timeout=None):
    """`python -m bigram <args>` run in `cwd`, in this process as stage() runs a stage."""
    from bigram import cli

    r = in_process(
        [sys.executable, "-m", "bigram", *args],
        cwd,
        lambda: cli.main(list(args)),
        sys_argv=["bigram", *args],
        timeout=timeout,
    )
    if check and r.returncode != 0:
        raise AssertionError(f"bigram {args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def error_line(result):
    """The single stderr line of a failed command, without its 'error: ' prefix."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0][len("error: ") :]


# Python's default warning filters: what a freshly started interpreter prints.
_DEFAULT_WARNINGS = [
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
]


def _show_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


class _Hung(BaseException):
    """The in-process command's timeout: a BaseException, so no `except Exception` of the
    code under test swallows it."""


def _hung(signum, frame):
    raise _Hung


@contextmanager
def _as_a_fresh_process(cwd, sys_argv, timeout):
    """Run a command's code here as a new process started in `cwd` would: the working
    directory, sys.argv, the environment, the signal handlers, the CPU limit and
    sys.excepthook that bigram.console sets are restored afterwards; the module-level
    state of bigram that depends on the project (the directories swept of stale temporary
    files, the open stage outputs) starts empty, as in a new process; warnings print to
    stderr once per place, as Python's default filters do; and a timeout, like
    subprocess.run's, raises TimeoutExpired."""
    from bigram import codedeps, fsio

    saved = os.getcwd(), sys.argv[:], dict(os.environ), sys.excepthook
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGXCPU, signal.SIGALRM)}
    cpu = resource.getrlimit(resource.RLIMIT_CPU)
    # codedeps' parse cache is kept: it is keyed by a file's path and stamp (mtime_ns,
    # size), which copy_project preserves and an edit changes, so its entries hold for any
    # project copy; parsing afresh costs 30 ms a run, most of an in-process stage.
    stamped = inspect.signature(codedeps._parsed_imports.__wrapped__).parameters
    assert list(stamped) == ["path", "mtime_ns", "size"], "clear the cache here instead"
    fsio._swept.clear()  # "once per process": a new project's directories are not swept yet
    assert fsio._current is None
    os.chdir(cwd)
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in reversed(_DEFAULT_WARNINGS):
                warnings.filterwarnings(action, category=category, module=module)
            warnings.showwarning = _show_warning
            sys.argv = sys_argv
            if timeout is not None:
                signal.signal(signal.SIGALRM, _hung)
                signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                yield
            except _Hung:
                raise subprocess.TimeoutExpired(sys_argv, timeout) from None
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        cwd, sys.argv, environ, sys.excepthook = saved
        os.chdir(cwd)
        if os.environ != environ:
            os.environ.clear()
            os.environ.update(environ)
        for s, h in handlers.items():
            signal.signal(s, h)
        if resource.getrlimit(resource.RLIMIT_CPU) != cpu:
            resource.setrlimit(resource.RLIMIT_CPU, cpu)
        fsio._current = None


def in_process(args, cwd, call: Callable[[], object], sys_argv, timeout=None):
    """call() as the command `args` started in `cwd`: a CompletedProcess of its exit code
    (SystemExit's, 0 if it returns) and its captured stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err), _as_a_fresh_process(cwd, sys_argv, timeout):
        try:
            call()
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:  # sys.exit("message"): the interpreter prints it and exits 1
                print(e.code, file=sys.stderr)
                code = 1
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def snapshot(d):
    """Every output file's bytes, to compare before and after a failed run."""
    return {
        str(p.relative_to(d)): p.read_bytes()
        for top in ("data", "models", "metrics", "plots")
        for p in sorted((d / top).rglob("*"))
        if p.is_file()
    }


def read_json(path):
    return json.loads(Path(path).read_text())


def set_params(cwd, **overrides):
    """set_params(d, train__lr=10) edits d/params.yaml like `dvc exp run -S train.lr=10`."""
    path = Path(cwd) / "params.yaml"
    p = yaml.safe_load(path.read_text())
    for key, value in overrides.items():
        section, name = key.split("__")
        p.setdefault(section, {})[name] = value
    path.write_text(yaml.safe_dump(p, sort_keys=False))


def use_real_names(d):
    """Point the project copy `d` at the 32,033-name list, copied into its data/."""
    shutil.copy(REAL_NAMES, d / "data/names-full.txt")
    set_params(d, data__names="data/names-full.txt")


def copy_project(d):
    """Copy the project's sources, without any outputs, as a fresh clone has them, to `d`."""
    for rel in PROJECT_FILES:
        src, dst = ROOT / rel, d / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return d


@pytest.fixture
def project(tmp_path):
    """A copy of the project's sources, without any outputs, as a fresh clone has them."""
    return copy_project(tmp_path / "project")


def init_git(d):
    """Make `d` a git repo with a test identity (no commit yet)."""
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.name", "test"],
        ["git", "config", "user.email", "test@example.com"],
        ["git", "config", "commit.gpgsign", "false"],
    ):
        sh(cmd, d)
    return d


def init_repo(d):
    """Make the project copy `d` a committed git repo, ready for the real dvc CLI."""
    init_git(d)
    dvc(d, "config", "core.analytics", "false")
    commit_all(d, "init")
    return d


def commit_all(d, message):
    sh(["git", "add", "-A"], d)
    sh(["git", "commit", "-qm", message], d)


@pytest.fixture
def repo(project):
    """The project copy as a committed git repo, ready for the real dvc CLI."""
    return init_repo(project)


@pytest.fixture(scope="session")
def trained_project_template(tmp_path_factory):
    """Built once per session: a project copy after running every stage (no git, no DVC)."""
    d = copy_project(tmp_path_factory.mktemp("stages") / "project")
    for name in STAGES:
        stage(d, name)
    return d


def private_copy(template, tmp_path):
    """A test's own copy of a session-built project (outputs, git and DVC state)."""
    d = tmp_path / "project"
    shutil.copytree(template, d, symlinks=True)
    return d


@pytest.fixture
def trained_project(trained_project_template, tmp_path):
    """A private copy of the project with every stage's outputs."""
    return private_copy(trained_project_template, tmp_path)


@pytest.fixture
def trained(trained_project):
    """trained_project, by a shorter name."""
    return trained_project


@pytest.fixture(scope="session")
def baseline_repo(tmp_path_factory):
    """Built once per session: the repo after `dvc repro`, with the run committed.
    Tests get copies (trained_repo), so the suite pays for one cold repro."""
    d = tmp_path_factory.mktemp("baseline") / "project"
    copy_project(d)
    init_repo(d)
    dvc(d, "repro")
    commit_all(d, "baseline run")
    return d


@pytest.fixture
def trained_repo(baseline_repo, tmp_path):
    """A private copy of the baseline repo: git history, DVC cache and outputs."""
    return private_copy(baseline_repo, tmp_path)
