"""Choose on dev, report test once: name the experiment with the lowest dev NLL.

    bigram select            # among HEAD and its experiments
    bigram select --json

Reads `dvc exp show --json`. Only the winner's test NLL is printed: looking at
every experiment's test score and picking the best would tune on test (the
notebook's exercise is to tune smoothing and regularisation on dev).
"""

import json
import subprocess
import sys
from collections.abc import Iterator

from bigram.console import PipelineError
from bigram.params import is_number

METRICS = "metrics/evaluate.json"


def _scored(metrics: object) -> bool:
    """evaluate.json as the evaluate stage writes it; an old or foreign shape is skipped."""
    return isinstance(metrics, dict) and all(
        isinstance(metrics.get(split), dict) and is_number(metrics[split].get("nll"))
        for split in ("dev", "test")
    )


def candidates(shown: list) -> Iterator[tuple[str, str, str, dict, dict]]:
    """(name, rev, kind, params, evaluate metrics) of each commit and experiment in
    `dvc exp show --json` output that has evaluate metrics."""
    for baseline in shown:
        if baseline["rev"] == "workspace":
            continue  # the workspace repeats HEAD or an applied experiment
        entries = [baseline] + [
            rev for exp in baseline.get("experiments") or [] for rev in exp.get("revs", [])
        ]
        for kind, entry in zip(["commit"] + ["experiment"] * (len(entries) - 1), entries):
            data = entry.get("data") or {}
            metrics = (data.get("metrics") or {}).get(METRICS, {}).get("data")
            if _scored(metrics):
                params = data.get("params", {}).get("params.yaml", {}).get("data", {})
                yield entry.get("name") or entry["rev"][:7], entry["rev"], kind, params, metrics


def best(shown: list) -> tuple[tuple[str, str, str, dict, dict], int]:
    found = sorted(candidates(shown), key=lambda c: (c[4]["dev"]["nll"], c[0]))
    if not found:
        raise PipelineError(
            "no commit or experiment has metrics/evaluate.json; "
            "run `dvc repro` or `dvc exp run` first"
        )
    return found[0], len(found)


def select_command(as_json: bool) -> int:
    """The `select` subcommand; returns the exit code."""
    r = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "show", "--json"], capture_output=True, text=True
    )
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no message"])[-1]
        raise PipelineError(f"`dvc exp show --json` failed: {last}")
    try:
        shown = json.loads(r.stdout)
    except ValueError:
        raise PipelineError("`dvc exp show --json` printed something that is not JSON") from None
    (name, rev, kind, params, metrics), considered = best(shown)
    train = params.get("train", {})
    if as_json:
        print(
            json.dumps(
                {
                    "name": name,
                    "rev": rev,
                    "kind": kind,
                    "considered": considered,
                    "ranked_on": f"{METRICS}:dev.nll (lowest first)",
                    "dev_nll": metrics["dev"]["nll"],
                    "test_nll": metrics["test"]["nll"],
                    "params": params,
                },
                indent=2,
                sort_keys=True,
            )
        )
        return 0
    print(
        f"ranked on dev.nll of {METRICS}, lowest first, among {considered}\n"
        f"best on dev: {name} ({rev[:7]}) with train.lr={train.get('lr')} "
        f"train.reg={train.get('reg')}\n"
        f"  dev NLL  {metrics['dev']['nll']:.4f}\n"
        f"  test NLL {metrics['test']['nll']:.4f}   (reported for the chosen one only)"
    )
    if kind == "experiment":
        print(f"  keep it: dvc exp apply {name}   or   dvc exp branch {name} <branch>")
    else:
        print("  it is the committed baseline: no experiment beats it on dev")
    return 0
