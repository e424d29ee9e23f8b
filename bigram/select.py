"""Choose on dev, report test once: name the experiment with the lowest dev NLL.

    bigram select                              # the neural model, among HEAD and its experiments
    bigram select --model count                # the count-based model (compare.smoothing)
    bigram select --by model.context           # the best for each context: bigram, trigram, ...
    bigram select --json
    bigram select --all                        # every candidate ranked on dev (no test column)
    bigram select -A                           # the experiments of every commit, not only HEAD's
    bigram select --rev main --rev HEAD~1      # of these commits

Reads `dvc exp show --json` (with its -A / --rev). Only the winner's test NLL is printed
(one per group with --by): looking at every experiment's test score and picking the best
would tune on test (the notebook's exercise is to tune smoothing and regularisation on dev).
"""

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bigram.console import PipelineError
from bigram.params import RULES, SECTIONS, is_number

# Where each model's NLL per split is, in the metrics files the stages write.
MODELS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "neural": ("metrics/evaluate.json", lambda m, split: m[split]["nll"]),
    "count": ("metrics/compare.json", lambda m, split: m["count"][split]),
}
# The params sections each model depends on: the others are not shown beside it.
SHOWN = {
    "neural": ("data", "split", "model", "train"),
    "count": ("data", "split", "model", "compare"),
}


@dataclass(frozen=True)
class Candidate:
    name: str
    rev: str
    kind: str  # "commit" or "experiment"
    commit: str  # the commit it is, or the one the experiment was run on
    params: dict[str, Any]  # flat: {"train.reg": 0.01, ...}
    train: float
    dev: float
    test: float


def _scores(metrics: object, model: str) -> tuple[float, float, float] | None:
    """(train, dev, test) NLL of `model` in a metrics file as the stages write it; None
    for an old or foreign shape, which is skipped."""
    read = MODELS[model][1]
    try:
        scores = tuple(read(metrics, split) for split in ("train", "dev", "test"))
    except (KeyError, TypeError, IndexError):
        return None
    return scores if all(is_number(v) for v in scores) else None


def _flat(params: object) -> dict[str, Any]:
    if not isinstance(params, dict):
        return {}
    return {
        f"{section}.{key}": value
        for section, values in params.items()
        if isinstance(values, dict)
        for key, value in values.items()
    }


def survey(
    shown: list[Any], model: str = "neural"
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """The commits and finished experiments in `dvc exp show --json` output that have
    `model`'s metrics, and [(name, why)] of those passed over: still queued or running
    (their metrics would be the baseline's), failed, or with no usable scores."""
    path = MODELS[model][0]
    found: list[Candidate] = []
    skipped: list[tuple[str, str]] = []
    for baseline in shown:
        if baseline["rev"] == "workspace":
            continue  # the workspace repeats HEAD or an applied experiment
        entries = [(baseline, "commit", None)] + [
            (rev, "experiment", (exp.get("executor") or {}).get("state"))
            for exp in baseline.get("experiments") or []
            for rev in exp.get("revs", [])
        ]
        for entry, kind, state in entries:
            name = entry.get("name") or entry["rev"][:7]
            if state not in (None, "success"):
                skipped.append((name, f"{state}, not finished"))
                continue
            data = entry.get("data") or {}
            scores = _scores((data.get("metrics") or {}).get(path, {}).get("data"), model)
            if not scores:
                why = "no metrics (failed?)" if not data else f"no finite NLLs in {path}"
                skipped.append((name, why))
                continue
            params = _flat(data.get("params", {}).get("params.yaml", {}).get("data"))
            found.append(Candidate(name, entry["rev"], kind, baseline["rev"], params, *scores))
    return found, skipped


def candidates(shown: list[Any], model: str = "neural") -> Iterator[Candidate]:
    """Each commit and finished experiment that has `model`'s metrics."""
    yield from survey(shown, model)[0]


def ties(found: list[Candidate], chosen: Candidate, by: str | None = None) -> list[Candidate]:
    """The others of its group with exactly the chosen one's dev NLL (the name that sorts
    first won)."""
    return [
        c
        for c in found
        if c.dev == chosen.dev
        and c.rev != chosen.rev
        and (by is None or c.params.get(by, "missing") == chosen.params.get(by, "missing"))
    ]


def best(shown: list[Any], model: str = "neural", by: str | None = None) -> list[Candidate]:
    """The lowest dev NLL among all candidates, or for each value of the param `by`
    (in increasing order); ties go to the name that sorts first."""
    return winners_of(list(candidates(shown, model)), model, by)


def winners_of(found: list[Candidate], model: str, by: str | None) -> list[Candidate]:
    """best() of candidates already surveyed."""
    if not found:
        raise PipelineError(
            f"no commit or experiment has {MODELS[model][0]}; "
            "run `dvc repro` or `dvc exp run` first"
        )
    groups: dict[object, list[Candidate]] = {}
    for c in found:
        groups.setdefault(c.params.get(by, "missing") if by else None, []).append(c)
    return [
        min(groups[key], key=lambda c: (c.dev, c.name))
        for key in sorted(groups, key=lambda v: (not is_number(v), v if is_number(v) else str(v)))
    ]


def varied(found: list[Candidate]) -> list[str]:
    """The params whose values differ among the candidates, in params.yaml's order."""
    order = [f"{s}.{k}" for s, keys in SECTIONS.items() for k in keys]
    keys = {k for c in found for k in c.params}
    return [
        k
        for k in sorted(keys, key=lambda k: order.index(k) if k in order else len(order))
        if len({json.dumps(c.params.get(k)) for c in found}) > 1
    ]


def fetch(all_commits: bool = False, revs: list[str] | None = None) -> list[Any]:
    """`dvc exp show --json`: the params and metrics of HEAD (or every commit, or `revs`)
    and of their experiments."""
    where = ["-A"] if all_commits else [a for rev in revs or [] for a in ("--rev", rev)]
    r = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "show", "--json", *where],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no message"])[-1]
        raise PipelineError(f"`dvc exp show --json` failed: {last}")
    try:
        shown: list[Any] = json.loads(r.stdout)
    except ValueError:
        raise PipelineError("`dvc exp show --json` printed something that is not JSON") from None
    return shown


@dataclass(frozen=True)
class Ranking:
    """What select decides: the winners (one, or one per value of `by`), among what."""

    model: str
    by: str | None
    winners: list[Candidate]
    found: list[Candidate]
    skipped: list[tuple[str, str]]

    @property
    def metric(self) -> str:
        return "count.dev" if self.model == "count" else "dev.nll"


def check_by(by: str | None) -> None:
    if by is not None and by not in RULES:
        raise PipelineError(
            f"--by {by}: not a param of params.yaml; name one as section.key, "
            "e.g. model.context or train.reg"
        )


def rank(shown: list[Any], model: str = "neural", by: str | None = None) -> Ranking:
    """Choose on dev among the commits and experiments in `shown`."""
    check_by(by)
    found, skipped = survey(shown, model)  # once: best() would survey again
    return Ranking(model, by, winners_of(found, model, by), found, skipped)


def _row(c: Candidate, with_test: bool = True) -> dict[str, Any]:
    return {
        "name": c.name,
        "rev": c.rev,
        "kind": c.kind,
        "commit": c.commit,
        "train_nll": c.train,
        "dev_nll": c.dev,
        **({"test_nll": c.test} if with_test else {}),
        "params": c.params,
    }


def ranked(r: Ranking) -> list[Candidate]:
    """Every candidate, lowest dev NLL first (ties by name)."""
    return sorted(r.found, key=lambda c: (c.dev, c.name))


def as_json(r: Ranking, everyone: bool = False) -> dict[str, Any]:
    rows = [
        {**_row(c), **({"group": {r.by: c.params.get(r.by)}} if r.by else {})} for c in r.winners
    ]
    out: dict[str, Any] = {
        "model": r.model,
        "considered": len(r.found),
        "ranked_on": f"{MODELS[r.model][0]}:{r.metric} (lowest first)",
        "skipped": [{"name": n, "why": why} for n, why in r.skipped],
        "tied_on_dev": sorted({t.name for c in r.winners for t in ties(r.found, c, r.by)}),
    }
    out.update({"by": r.by, "best": rows} if r.by else rows[0])
    if everyone:  # the candidates on dev only: test stays the chosen ones'
        out["ranked"] = [_row(c, with_test=False) for c in ranked(r)]
    return out


def as_text(r: Ranking) -> list[str]:
    by, found = r.by, r.found
    shown_keys = [k for k in varied(found) if k != by and k.split(".")[0] in SHOWN[r.model]]
    lines = [
        f"ranked on {r.metric} of {MODELS[r.model][0]}, lowest first, among {len(found)}"
        + (f"; the best for each {by}" if by else "")
    ]
    if r.skipped:
        shown_skips = ", ".join(f"{n} ({why})" for n, why in r.skipped[:5])
        more = f" and {len(r.skipped) - 5} more" if len(r.skipped) > 5 else ""
        lines.append(f"passed over {len(r.skipped)}: {shown_skips}{more}")
    for c in r.winners:
        tied = ties(found, c, by)
        if tied:
            names = ", ".join(t.name for t in tied)
            lines.append(
                f"{c.name} ties on dev NLL with {names}: chosen as the name that sorts first"
            )
    if by:
        header = [by, "best on dev", *shown_keys, "train NLL", "dev NLL", "test NLL"]
        table = [
            [str(c.params.get(by)), c.name, *(str(c.params.get(k)) for k in shown_keys)]
            + [f"{c.train:.4f}", f"{c.dev:.4f}", f"{c.test:.4f}"]
            for c in r.winners
        ]
        widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
        for row in [header, *table]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        lines.append("test NLL is reported for the chosen one of each group only")
        return lines
    c = r.winners[0]
    settings = " ".join(f"{k}={c.params.get(k)}" for k in shown_keys)
    lines += [
        f"best on dev: {c.name} ({c.rev[:7]}"
        + (f", run on commit {c.commit[:7]})" if c.kind == "experiment" else ")")
        + (f" with {settings}" if settings else ""),
        f"  dev NLL  {c.dev:.4f}",
        f"  test NLL {c.test:.4f}   (reported for the chosen one only)",
    ]
    if c.kind == "experiment":
        lines.append(f"  keep it: dvc exp apply {c.name}   or   dvc exp branch {c.name} <branch>")
    else:
        lines.append("  it is the committed baseline: no experiment beats it on dev")
    return lines


def as_table(r: Ranking) -> list[str]:
    """Every candidate ranked on dev, with the params that vary and no test column."""
    keys = [k for k in varied(r.found) if k.split(".")[0] in SHOWN[r.model]]
    header = ["rank", "name", "commit", *keys, "train NLL", "dev NLL"]
    table = [
        [str(i), c.name, c.commit[:7], *(str(c.params.get(k)) for k in keys)]
        + [f"{c.train:.4f}", f"{c.dev:.4f}"]
        for i, c in enumerate(ranked(r), 1)
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
        for row in [header, *table]
    ]


def select_command(
    json_out: bool,
    model: str = "neural",
    by: str | None = None,
    everyone: bool = False,
    all_commits: bool = False,
    revs: list[str] | None = None,
) -> int:
    """The `select` subcommand: fetch, rank, render; returns the exit code."""
    check_by(by)  # before DVC is asked anything
    ranking = rank(fetch(all_commits, revs), model, by)
    if json_out:
        print(json.dumps(as_json(ranking, everyone), indent=2, sort_keys=True))
        return 0
    lines = as_text(ranking)
    if everyone:
        lines += ["", f"all {len(ranking.found)} ranked on dev (test is not shown: choose on dev)"]
        lines += as_table(ranking)
    print("\n".join(lines))
    return 0
