"""How every stage starts and fails.

Errors a user can fix (a bad names file, a typo in params.yaml, a broken
checkpoint) are raised as PipelineError and end as one line on stderr with a
non-zero exit: a traceback would bury the one thing the user needs to read.
Anything else is a bug and keeps its traceback.
"""
import sys


class PipelineError(Exception):
    """A user-fixable error; the message names the file or key and the fix."""


def run(main):
    try:
        main()
    except PipelineError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        sys.exit(1)


def progress(stage, message):
    # One line per phase keeps `dvc repro` output readable at any size.
    print(f"[{stage}] {message}", flush=True)


def bar(stage, done, total, width=30):
    # Redrawn in place, and only on a terminal: in a log it would be noise.
    if not sys.stdout.isatty():
        return
    filled = width * done // max(total, 1)
    print(f"\r[{stage}] {'#' * filled}{'.' * (width - filled)} {done}/{total}",
          end="\n" if done == total else "", flush=True)
