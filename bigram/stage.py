"""How a DVC stage starts: no arguments, the pinned environment, one-line errors."""

import argparse
from collections.abc import Callable

from bigram import environment, pipeline
from bigram.console import run


def run_stage(name: str, main: Callable[[], None], doc: str, argv: list[str] | None = None) -> None:
    """Run a DVC stage: it takes no arguments (everything is in params.yaml), so
    `--help` prints what it reads and writes and anything else is refused before
    an artifact is touched; then it refuses other library versions than the pinned
    ones (bigram.environment) before any work."""
    parser = argparse.ArgumentParser(
        prog=f"python -m stages.{name}",
        description=f"{doc.rstrip()}\n\n{pipeline.describe(name)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)

    def checked() -> None:
        environment.check(name)
        main()

    run(checked)
