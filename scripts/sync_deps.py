"""Rewrite each stage's code deps in dvc.yaml to its import closure.

    python scripts/sync_deps.py

tests/test_codedeps.py fails when dvc.yaml and the imports disagree; this makes them
agree. Only the `bigram/` and `stages/` lines of each stage's deps are touched.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bigram.codedeps import code_files  # noqa: E402


def main() -> None:
    lines, stage, out = (ROOT / "dvc.yaml").read_text().split("\n"), None, []
    for line in lines:
        if m := re.match(r"  (\w+):$", line):
            stage = m.group(1)
        if re.match(r"      - (bigram|stages)/\w+\.py$", line):
            if line.strip() == f"- stages/{stage}.py":  # the last code line of the stage
                out += [f"      - {p}" for p in code_files(f"stages/{stage}.py", ROOT)]
            continue
        out.append(line)
    (ROOT / "dvc.yaml").write_text("\n".join(out))


if __name__ == "__main__":
    main()
