"""How stages and tools talk to a person: one-line errors, progress, arguments.

Errors a user can fix (a bad names file, a typo in params.yaml, a broken
checkpoint) are raised as PipelineError and end as one line on stderr with a
non-zero exit: a traceback would bury the one thing the user needs to read.
Anything else is a bug and keeps its traceback.
"""

import signal
import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A user-fixable error; the message names the file or key and the fix."""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(main: Callable[[], None]) -> None:
    """Call main(), turning a PipelineError, Ctrl-C or SIGTERM into a line on stderr and
    an exit code."""
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, or a queue worker being stopped
    try:
        main()
    except PipelineError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        # Outputs are written atomically, so an interrupted stage left the old ones.
        print("interrupted; outputs are as they were before this run", file=sys.stderr)
        sys.exit(130)


def progress(stage: str, message: str) -> None:
    # One line per phase keeps `dvc repro` output readable at any size.
    print(f"[{stage}] {message}", flush=True)


def bar(stage: str, done: int, total: int, width: int = 30) -> None:
    # Redrawn in place, and only on a terminal: in a log it would be noise.
    if not sys.stdout.isatty():
        return
    filled = width * done // max(total, 1)
    print(
        f"\r[{stage}] {'#' * filled}{'.' * (width - filled)} {done}/{total}",
        end="\n" if done == total else "",
        flush=True,
    )
