"""`bigram sweep`: a grid of experiments on DVC's queue, on every core, without the
run-cache race.

    bigram sweep -S 'model.context=1,2,3' -S 'train.reg=0.001,0.1' [--jobs N]

Each point of the grid is an ordinary queued DVC experiment (`dvc exp show`,
`bigram select`, `dvc exp push` and `bigram lineage --rev` see it). What this adds
is the order: two of DVC's workers running the same stage with the same inputs at
once can fail one of them (the run-cache race, treeverse/dvc#10673), so an
experiment is handed to the queue only when no experiment in flight will run any
stage it will run. Stages several experiments share therefore run once, and the
experiments queued after take them from the run cache. Which stages an experiment
runs is DVC's own graph: a stage runs when its params, or any upstream stage's,
differ from the workspace's dvc.lock (or the workspace is not up to date).
"""

import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bigram import params
from bigram.console import PipelineError

# Seconds after starting DVC's queue workers before checking again that they are there;
# and how long queuing waits for the lock a worker holds as it takes an experiment.
WORKER_START = 15.0
QUEUE_LOCKED = 180.0

# A stage run: the stage and every params.yaml value it and its upstream stages read.
Key = tuple[str, tuple[tuple[str, str], ...]]

# Hydra's sweep forms other than a comma list, which DVC would expand but this does not.
_OTHER_SWEEPS = re.compile(r"^\s*(range|choice|interval|glob|sort|shuffle|tag)\(|[\[\]{}'\"]")


@dataclass(frozen=True)
class Experiment:
    """One point of the grid: its -S overrides as the user wrote each value."""

    overrides: tuple[tuple[str, str], ...]

    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.overrides)


def grid(sets: list[str]) -> list[Experiment]:
    """The experiments of -S KEY=V1,V2,... options: every combination, the first option
    varying slowest, as `dvc exp run --queue -S` orders its sweep."""
    axes: dict[str, list[str]] = {}
    for text in sets:
        key, eq, values = text.partition("=")
        key = key.strip().removeprefix("params.yaml:")
        if not eq or not key or ":" in key:
            raise PipelineError(
                f"-S {text!r}: write KEY=VALUE or KEY=V1,V2,... with a params.yaml key, "
                "e.g. -S train.lr=10,50"
            )
        if _OTHER_SWEEPS.search(values) or key.startswith(("+", "~")):
            raise PipelineError(
                f"-S {text!r}: bigram sweep takes plain values and comma lists (KEY=V1,V2); "
                "for Hydra's other sweeps, queue them with `dvc exp run --queue -S` and "
                "`dvc queue start` (one worker)"
            )
        if key in axes:
            raise PipelineError(f"-S {key} is given twice; list its values once: {key}=V1,V2")
        parts = [v.strip() for v in values.split(",")]
        if "" in parts:
            raise PipelineError(f"-S {text!r}: an empty value; list values as {key}=V1,V2")
        axes[key] = list(dict.fromkeys(parts))  # a value listed twice is one experiment
    return [Experiment(tuple(zip(axes, combo))) for combo in itertools.product(*axes.values())]


def experiment_params(base: dict[str, Any], exp: Experiment) -> dict[str, Any]:
    """params.yaml's tree with the experiment's overrides, each value parsed as DVC
    parses a -S value (YAML), and checked as the stages will check it."""
    tree = {s: dict(v) if isinstance(v, dict) else v for s, v in base.items()}
    for key, text in exp.overrides:
        section, _, name = key.partition(".")
        if not name or not isinstance(tree.get(section), dict) or name not in tree[section]:
            raise PipelineError(
                f"-S {key}: params.yaml has no such key; the keys are "
                + ", ".join(f"{s}.{n}" for s, v in base.items() if isinstance(v, dict) for n in v)
            )
        tree[section][name] = params.parse_yaml(text.encode(), f"-S {key}")
    try:
        params.validate(tree, f"params.yaml with -S {exp.label()}")
    except PipelineError as e:
        raise PipelineError(f"{e}; nothing was queued") from None
    return tree


@dataclass(frozen=True)
class Stage:
    name: str
    reads: tuple[str, ...]  # params.yaml keys or sections, its own and its upstream stages'
    upstream: tuple[str, ...]


def stage_keys(stages: list[Stage], tree: dict[str, Any]) -> set[Key]:
    """The stage runs an experiment with params `tree` would be: each stage with the
    values of everything it reads."""
    flat = params.flatten(tree)
    keys = set()
    for stage in stages:
        values = sorted(
            (k, repr(v))
            for k, v in flat.items()
            if any(k == r or k.startswith(r + ".") for r in stage.reads)
        )
        keys.add((stage.name, tuple(values)))
    return keys


@dataclass
class Plan:
    """Which experiments may go to the queue now: an experiment's stage runs that are
    not done yet must not be claimed by one in flight."""

    waiting: list[tuple[Experiment, set[Key]]]
    done: set[Key]
    flying: dict[Experiment, set[Key]] = field(default_factory=dict)

    def next(self) -> Experiment | None:
        """The waiting experiment with the most stage runs left among those free to go
        (so long ones start early), the first in grid order on a tie; None if none is."""
        claimed = set().union(*self.flying.values())
        free = [
            (e, keys - self.done) for e, keys in self.waiting if not (keys - self.done) & claimed
        ]
        if not free:
            return None
        exp, todo = max(free, key=lambda f: len(f[1]))
        self.waiting = [(e, k) for e, k in self.waiting if e != exp]
        self.flying[exp] = todo
        return exp

    def finished(self, exp: Experiment, ok: bool) -> None:
        """A finished experiment's stage runs are in the run cache if it succeeded; if it
        failed, the next experiment needing one runs it (and says why it fails, if so)."""
        todo = self.flying.pop(exp)
        if ok:
            self.done |= todo


class Queue:
    """DVC's experiment queue (dvc.repo.Repo's celery queue; its workers started by
    `dvc queue start`): put, start workers, poll. The one place this command touches DVC's
    queue."""

    def __init__(self, repo: object) -> None:
        self.repo = repo
        self.queue = repo.experiments.celery_queue  # type: ignore[attr-defined]
        self.root: str = repo.root_dir  # type: ignore[attr-defined]
        self.started: float | None = None  # when workers were last started
        self._starter: tuple[subprocess.Popen[bytes], IO[bytes], str] | None = None

    def put(self, exp: Experiment) -> tuple[str, str]:
        """Queue one experiment: its stash revision and DVC's name for it."""
        from dvc.lock import LockError

        overrides = [f"{k}={v}" for k, v in exp.overrides]
        deadline = time.monotonic() + QUEUE_LOCKED
        while True:
            try:
                entry = self.repo.experiments.queue_one(  # type: ignore[attr-defined]
                    self.queue, params={"params.yaml": overrides}
                )
                return entry.stash_rev, entry.name or entry.stash_rev[:7]
            except LockError:
                # A worker taking its next experiment holds the queue's stash for a moment.
                # DVC's workers wait for that lock (3 minutes); queuing does not, so here
                # it waits as they do.
                if time.monotonic() > deadline:
                    raise PipelineError(
                        f"DVC's experiment queue stayed locked for {QUEUE_LOCKED:.0f} s while "
                        f"queuing {exp.label()}; see `dvc queue status` and `dvc queue logs`"
                    ) from None
                time.sleep(0.2)

    def start(self, jobs: int) -> None:
        """Have `jobs` workers: DVC's stop after 10 s of an empty queue, so the ones
        that went away while experiments waited on others are started again."""
        if jobs < 1:
            return
        # A worker takes seconds to write its pid file and answer DVC's ping; started again
        # meanwhile, a second worker of the same name joins (seen: the sweep then never
        # saw its last experiment end). DVC's workers idle 10 s before they stop: after a
        # start, none is started again for longer than that.
        if self.started is not None and time.monotonic() - self.started < WORKER_START:
            return
        alive = 0
        for name, info in self.queue.proc.processes():
            if name.startswith("dvc-exp-worker-") and info.returncode is None and _alive(info.pid):
                alive += 1
        if alive < jobs:
            self._spawn(jobs)
            self.started = time.monotonic()

    def _spawn(self, jobs: int) -> None:
        # `dvc queue start` in a process of its own, with no pipe of ours: DVC forks a
        # keeper per worker that holds its starter's stdout and stderr until that worker
        # stops, 10 s after the queue empties. Started from this process, a pipe reading
        # the sweep (`| tee`, a script capturing it) stayed open that long after its end.
        if failed := self.close():
            raise PipelineError(
                f"{failed}; the sweep's experiments are still in DVC's queue (`dvc queue status`)"
            )
        log = tempfile.TemporaryFile()  # a file, not a pipe: nothing waits on it
        command = ["dvc", "queue", "start", "--jobs", str(jobs)]
        self._starter = (
            subprocess.Popen(
                [sys.executable, "-m", *command],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            ),
            log,
            " ".join(command),
        )

    def close(self) -> str | None:
        """Reap the last `dvc queue start` (it returns in about a second): None if it
        succeeded, else what it said."""
        if self._starter is None:
            return None
        proc, log, command = self._starter
        self._starter = None
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        with log:
            log.seek(0)
            said = log.read().decode(errors="replace").strip().splitlines() or ["no output"]
        return None if code == 0 else f"`{command}` failed: {said[-1]}"

    def finished(self) -> dict[str, bool]:
        """{stash revision: succeeded} of every experiment the queue has finished."""
        return {
            done.entry.stash_rev: bool(done.result and done.result.ref_info)
            for done in self.queue.iter_done()
        }

    def why(self, rev: str) -> str:
        """Why an experiment failed, in one line, from its log."""
        info = self.queue.proc.get(rev)
        try:
            return failure_line(Path(info.stdout).read_text(errors="replace"), rev)
        except (AttributeError, TypeError, OSError):
            return f"no log; see `dvc queue logs {rev[:7]}`"

    def busy(self) -> int:
        """Experiments already queued or running in DVC's queue."""
        return len(list(self.queue.iter_queued())) + len(list(self.queue.iter_active()))


def failure_line(log: str, rev: str) -> str:
    """The line that says why: the stage's `error:` line, after the stage DVC was
    running; else DVC's last ERROR line."""
    lines = log.splitlines()
    stages = [m.group(1) for line in lines if (m := _RUNNING.search(line))]
    ours = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if ours:
        return f"{stages[-1]}: {ours[-1]}" if stages else ours[-1]
    theirs = [line for line in lines if line.startswith("ERROR:")]
    return theirs[-1] if theirs else f"see `dvc queue logs {rev[:7]}`"


_RUNNING = re.compile(r"Running stage '([^']+)'")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dvc_stages(repo: object) -> tuple[list[Stage], set[str]]:
    """The pipeline's stages from DVC's own reading of dvc.yaml, with what each reads
    from params.yaml directly or through an upstream stage; and the stages whose
    workspace state is not what dvc.lock records (`dvc status`)."""
    import networkx as nx
    from dvc.dependency.param import ParamsDependency

    index = repo.index  # type: ignore[attr-defined]
    own = {
        stage: tuple(
            p
            for dep in stage.deps
            if isinstance(dep, ParamsDependency) and dep.def_path == params.PARAMS_FILE
            for p in dep.params
        )
        for stage in index.stages
    }
    stages = []
    for stage in index.stages:
        if not stage.cmd:  # a .dvc file: data, not a stage
            continue
        upstream = [s for s in nx.descendants(index.graph, stage) if s.cmd]
        reads = {r for s in (stage, *upstream) for r in own[s]}
        stages.append(
            Stage(stage.addressing, tuple(sorted(reads)), tuple(s.addressing for s in upstream))
        )
    stale = {str(name).split(":")[-1] for name in repo.status()}  # type: ignore[attr-defined]
    return stages, stale


def lock_keys(stages: list[Stage], stale: set[str], workspace: dict[str, Any]) -> set[Key]:
    """The stage runs dvc.lock holds already: a queued experiment whose stage reads the
    same values as the workspace, where it and its upstream stages are up to date,
    finds it unchanged and runs nothing for it."""
    fresh = [s for s in stages if s.name not in stale and not stale & set(s.upstream)]
    return stage_keys(fresh, workspace)


def sweep_command(
    sets: list[str], jobs: int, say: Callable[[str], None] = print, poll: float = 0.5
) -> int:
    """Queue and run the grid on `jobs` workers, printing progress; 0 if every
    experiment succeeded, 1 if one failed (each failure said in one line)."""
    if jobs < 1:
        raise PipelineError(f"--jobs {jobs}: give 1 or more workers")
    exps = grid(sets)
    base = params.validate(
        params.parse_yaml(Path(params.PARAMS_FILE).read_bytes(), params.PARAMS_FILE)
    )
    trees = {e: experiment_params(base, e) for e in exps}
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    started = time.monotonic()

    def report(text: str) -> None:
        elapsed = int(time.monotonic() - started)
        say(f"[sweep {elapsed // 60}:{elapsed % 60:02d}] {text}")

    with Repo(".") as repo:
        queue = Queue(repo)
        if busy := queue.busy():
            raise PipelineError(
                f"DVC's queue already holds {busy} queued or running experiment"
                f"{'s' * (busy > 1)} (`dvc queue status`), which could run a stage at the same "
                "time as the sweep: let them finish, or `dvc queue remove --queued`"
            )
        stages, stale = dvc_stages(repo)
        plan = Plan(
            [(e, stage_keys(stages, trees[e])) for e in exps], lock_keys(stages, stale, base)
        )
        names: dict[str, tuple[Experiment, str]] = {}
        failed: list[str] = []
        report(f"{len(exps)} experiments on {jobs} worker{'s' * (jobs > 1)}")
        try:
            while plan.waiting or plan.flying:
                # One more than the workers: a worker that finishes finds the next experiment
                # queued already, instead of waiting for this loop to notice and queue it.
                while len(plan.flying) < jobs + 1 and (exp := plan.next()) is not None:
                    rev, name = queue.put(exp)
                    names[rev] = (exp, name)
                    report(f"queued {name}: {exp.label()}")
                queue.start(min(jobs, len(plan.flying)))
                time.sleep(poll)
                for rev, ok in queue.finished().items():
                    if rev not in names or names[rev][0] not in plan.flying:
                        continue  # not ours, or seen already
                    exp, name = names[rev]
                    plan.finished(exp, ok)
                    done = f"{len(exps) - len(plan.waiting) - len(plan.flying)}/{len(exps)}"
                    if ok:
                        report(f"{done} {name} succeeded")
                    else:
                        failed.append(f"{name} failed ({exp.label()}): {queue.why(rev)}")
                        report(f"{done} {failed[-1]}")
        except DvcException as e:
            queued = sum(exp in plan.flying for exp, _ in names.values())
            raise PipelineError(
                f"DVC failed during the sweep: {e}; {queued} experiment(s) are still in DVC's "
                "queue (`dvc queue status`)"
            ) from None
        except KeyboardInterrupt:
            report(
                f"interrupted: {len(plan.flying)} experiment(s) still in DVC's queue "
                f"(`dvc queue status`; `dvc queue kill` stops them), {len(plan.waiting)} "
                "not queued"
            )
            return 130
        finally:
            queue.close()
    report(
        f"{len(exps) - len(failed)} of {len(exps)} succeeded; compare them with "
        "`dvc exp show` or `bigram select`"
    )
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    return 1 if failed else 0


def default_jobs() -> int:
    """The cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
