"""How stages and tools talk to a person: one-line errors, progress, arguments.

Errors a user can fix (a bad names file, a typo in params.yaml, a broken
checkpoint) are raised as PipelineError and end as one line on stderr with a
non-zero exit: a traceback would bury the one thing the user needs to read.
Anything else is a bug and keeps its traceback.
"""

import os
import signal
import sys
from collections.abc import Callable
from types import TracebackType


class PipelineError(Exception):
    """A user-fixable error; the message names the file or key and the fix."""


class OutOfTime(BaseException):
    """The CPU-time limit (ulimit -t) is reached: SIGXCPU, before the kernel's SIGKILL."""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _out_of_time(signum: int, frame: object) -> None:
    raise OutOfTime


# Failures of a resource limit (ulimit -v) while a library loads: an ImportError whose
# text is the loader's, not a missing module.
_NO_MEMORY = ("failed to map segment", "cannot allocate memory", "memoryerror")
OUT_OF_MEMORY = (
    "out of memory (a memory limit such as `ulimit -v`, or the machine's): raise the limit, "
    "or lower what needs it (a smaller names file, model.context, sample.count)"
)


def is_out_of_memory(kind: type[BaseException], value: BaseException) -> bool:
    return issubclass(kind, MemoryError) or (
        issubclass(kind, ImportError) and any(s in str(value).lower() for s in _NO_MEMORY)
    )


def _hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if is_out_of_memory(kind, value):
        print(f"error: {OUT_OF_MEMORY}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, value, tb)


# Below this address-space limit numpy cannot load: its C modules fail half-initialised,
# with errors that do not say "memory" (seen: AttributeError 'datetime_CAPI', OpenBLAS
# aborting). Refused up front instead.
MIN_MEMORY = 256 * 2**20


def install_hook() -> None:
    """Before a stage or tool imports numpy: refuse a memory limit (`ulimit -v`) too small
    to start under, in one line, and make running out of memory later one line too.
    Anything else keeps its traceback."""
    import resource

    sys.excepthook = _hook
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY and limit < MIN_MEMORY:
        print(
            f"error: the memory limit (`ulimit -v`) is {limit // 2**20} MiB; this pipeline "
            f"needs at least {MIN_MEMORY // 2**20} MiB to start (up to 2 GiB per stage on the "
            "largest inputs): raise it",
            file=sys.stderr,
        )
        raise SystemExit(1)


def _usable_streams() -> None:
    """stdout or stderr closed (`>&-`) is None in Python: write to the null device instead;
    and a narrow encoding (PYTHONIOENCODING=ascii) escapes a name rather than crashing."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
        elif hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _warn_before_the_kill() -> None:
    """`ulimit -t N` sets the soft and the hard CPU limit alike, so SIGKILL would follow
    SIGXCPU at once and leave temporary files behind: lower the soft limit by a second,
    which gives the SIGXCPU handler time to abort the stage's outputs cleanly."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY and soft == hard and hard > 1:
        resource.setrlimit(resource.RLIMIT_CPU, (hard - 1, hard))


def run(main: Callable[[], None]) -> None:
    """Call main(), turning a PipelineError, Ctrl-C, SIGTERM, a closed pipe and running out
    of memory or CPU time into a line on stderr (or silence, for the pipe) and an exit code."""
    _usable_streams()
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, or a queue worker being stopped
    signal.signal(signal.SIGXCPU, _out_of_time)
    _warn_before_the_kill()
    try:
        main()
        sys.stdout.flush()
    except PipelineError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        # Outputs are written atomically, so an interrupted stage left the old ones.
        print("interrupted; outputs are as they were before this run", file=sys.stderr)
        sys.exit(130)
    except OutOfTime:
        print(
            "error: out of CPU time (`ulimit -t`): raise the limit; outputs are as they were "
            "before this run",
            file=sys.stderr,
        )
        sys.exit(128 + signal.SIGXCPU)
    except (MemoryError, ImportError) as e:
        if not is_out_of_memory(type(e), e):
            raise
        print(f"error: {OUT_OF_MEMORY}; outputs are as they were before this run", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        # The reader went away (`| head -1`): end quietly. Point stdout at the null device
        # so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + signal.SIGPIPE)


def _say(text: str, end: str = "\n") -> None:
    """Print a stage's report. A reader that went away (`python -m stages.train | true`)
    must not fail a stage whose work is done or half done: the rest goes nowhere, and the
    stage ends as it would have."""
    try:
        print(text, end=end, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def progress(stage: str, message: str) -> None:
    # One line per phase keeps `dvc repro` output readable at any size.
    _say(f"[{stage}] {message}")


def bar(stage: str, done: int, total: int, width: int = 30) -> None:
    # Redrawn in place, and only on a terminal: in a log it would be noise.
    if not sys.stdout.isatty():
        return
    filled = width * done // max(total, 1)
    _say(
        f"\r[{stage}] {'#' * filled}{'.' * (width - filled)} {done}/{total}",
        end="\n" if done == total else "",
    )
