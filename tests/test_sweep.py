"""bigram sweep's plan: the grid, its checks, and an order in which no two experiments in
flight would run the same stage (DVC's run-cache race)."""

import itertools

import pytest

from bigram import params, sweep
from bigram.console import PipelineError
from bigram.sweep import Experiment, Plan, Stage, failure_line, grid, lock_keys, stage_keys
from bigram.sweep import experiment_params as with_overrides
from tests.conftest import bigram, error_line

README_GRID = [
    "model.context=1,2,3",
    "train.reg=0.001,0.1",
    "compare.smoothing=0.1,1",
    "train.lr=50",
    "train.steps=1000",
]
# dvc.yaml's graph, as DVC reads it (a slow test runs the real one): what each stage
# reads from params.yaml, itself or through its upstream stages.
STAGES = [
    Stage("prepare", ("data",), ()),
    Stage("split", ("data", "model", "split"), ("prepare",)),
    Stage("train", ("data", "model", "split", "train"), ("prepare", "split")),
    Stage("evaluate", ("data", "model", "split", "train"), ("prepare", "split", "train")),
    Stage("compare", ("compare", "data", "model", "split", "train"), ("prepare", "split", "train")),
    Stage("sample", ("data", "model", "sample", "split", "train"), ("prepare", "split", "train")),
]


def test_the_grid_is_every_combination_first_option_slowest():
    exps = grid(README_GRID)
    assert len(exps) == 12
    assert [dict(e.overrides)["model.context"] for e in exps] == ["1"] * 4 + ["2"] * 4 + ["3"] * 4
    assert [dict(e.overrides)["compare.smoothing"] for e in exps[:4]] == ["0.1", "1"] * 2
    assert exps[0].label() == (
        "model.context=1 train.reg=0.001 compare.smoothing=0.1 train.lr=50 train.steps=1000"
    )
    assert grid(["params.yaml:train.lr=10,10, 50"]) == [  # DVC's file prefix; a repeat is one
        Experiment((("train.lr", "10"),)),
        Experiment((("train.lr", "50"),)),
    ]


BAD_SETS = {
    "train.lr": "-S 'train.lr': write KEY=VALUE or KEY=V1,V2,... with a params.yaml key, "
    "e.g. -S train.lr=10,50",
    "other.yaml:a=1": "-S 'other.yaml:a=1': write KEY=VALUE or KEY=V1,V2,... with a params.yaml "
    "key, e.g. -S train.lr=10,50",
    "train.lr=range(1,5)": "-S 'train.lr=range(1,5)': bigram sweep takes plain values and comma "
    "lists (KEY=V1,V2); for Hydra's other sweeps, queue them with `dvc exp run --queue -S` and "
    "`dvc queue start` (one worker)",
    "train.lr=1,,2": "-S 'train.lr=1,,2': an empty value; list values as train.lr=V1,V2",
}


@pytest.mark.parametrize("text", BAD_SETS)
def test_a_malformed_set_is_one_line_before_anything_is_queued(text):
    with pytest.raises(PipelineError) as e:
        grid([text])
    assert str(e.value) == BAD_SETS[text]


def test_a_key_twice_is_refused():
    with pytest.raises(PipelineError, match=r"^-S train.lr is given twice; list its values once"):
        grid(["train.lr=1", "train.lr=2"])


def test_every_experiment_is_checked_as_the_stages_will_before_any_is_queued():
    base = params.defaults()
    tree = with_overrides(base, Experiment((("train.lr", "1e-3"), ("model.context", "2"))))
    assert tree["train"]["lr"] == 0.001 and tree["model"]["context"] == 2  # parsed as DVC does
    assert base["train"]["lr"] == 50  # the base is not changed
    with pytest.raises(PipelineError) as e:
        with_overrides(base, Experiment((("train.lr", "-1"),)))
    assert str(e.value).startswith("params.yaml with -S train.lr=-1: train.lr = -1 is not allowed")
    assert str(e.value).endswith("; nothing was queued")
    with pytest.raises(PipelineError, match=r"^-S train.rate: params.yaml has no such key; the "):
        with_overrides(base, Experiment((("train.rate", "1"),)))


def test_the_command_refuses_a_bad_grid_in_one_line_before_touching_dvc(project):
    r = bigram(project, "sweep", "-S", "train.lr=10,-5")
    assert error_line(r).startswith("params.yaml with -S train.lr=-5: train.lr = -5 is not allowed")
    assert not (project / ".dvc/tmp/exps").exists()


def run(plan, jobs, order=None):
    """Run the plan as DVC's workers would, experiments ending in `order` (the first in
    flight by default); return the stage runs each experiment made, checking at every
    step that no two in flight would make the same one."""
    made = []
    while plan.waiting or plan.flying:
        while len(plan.flying) < jobs and (exp := plan.next()) is not None:
            pass
        flying = list(plan.flying.values())
        for a, b in itertools.combinations(flying, 2):
            assert not a & b, "two experiments in flight would run the same stage"
        exp = (order or (lambda f: next(iter(f))))(plan.flying)
        made.append(plan.flying[exp])
        plan.finished(exp, ok=True)
    return made


@pytest.mark.parametrize("jobs", [1, 2, 3, 8])
def test_shared_stages_run_once_and_never_two_at_a_time(jobs):
    base = params.defaults()
    exps = grid(README_GRID)
    plan = Plan([(e, stage_keys(STAGES, with_overrides(base, e))) for e in exps], set())
    made = run(plan, jobs)
    assert len(made) == 12
    runs = [key for keys in made for key in keys]
    assert len(runs) == len(set(runs))  # every stage run once
    count = {s.name: sum(k[0] == s.name for k in runs) for s in STAGES}
    # one prepare; a split per context; a train, evaluate and sample per (context, reg);
    # compare reads train's params too, so one per experiment
    assert count == {
        "prepare": 1,
        "split": 3,
        "train": 6,
        "evaluate": 6,
        "compare": 12,
        "sample": 6,
    }


def test_the_longest_experiments_go_first_and_workers_are_not_left_idle():
    base = params.defaults()
    base["data"]["names"] = "data/names.txt"
    done = lock_keys(STAGES, set(), base)  # the workspace's run: context 1 is split already
    exps = grid(README_GRID)
    plan = Plan([(e, stage_keys(STAGES, with_overrides(base, e))) for e in exps], done)
    first, second = plan.next(), plan.next()
    # a split, a train, evaluate, compare, sample each, and no stage in common
    assert {dict(e.overrides)["model.context"] for e in (first, second)} == {"2", "3"}
    assert len(plan.flying[first]) == len(plan.flying[second]) == 5
    assert plan.next() is not None  # a context-1 experiment needs neither split


def test_a_stale_stage_and_what_follows_it_are_not_taken_from_dvc_lock():
    base = params.defaults()
    fresh = {k[0] for k in lock_keys(STAGES, set(), base)}
    assert fresh == {s.name for s in STAGES}
    assert {k[0] for k in lock_keys(STAGES, {"split"}, base)} == {"prepare"}


def test_a_failed_experiments_stages_are_run_by_the_next_that_needs_them():
    base = params.defaults()
    exps = grid(["train.lr=10", "compare.smoothing=0.1,1"])
    plan = Plan([(e, stage_keys(STAGES, with_overrides(base, e))) for e in exps], set())
    first = plan.next()
    assert plan.next() is None  # the other needs the same train: it waits
    plan.finished(first, ok=False)
    second = plan.next()
    assert second is not None and "train" in {k[0] for k in plan.flying[second]}


LOG = """Reproducing experiment 'sunny-duck'
Stage 'prepare' didn't change, skipping
Running stage 'train':
> python -m stages.train
error: train diverged at step 3 (loss inf); lower train.lr
ERROR: failed to reproduce 'train': failed to run: python -m stages.train, exited with 1
"""


def test_a_failure_is_said_with_the_stages_own_line():
    assert failure_line(LOG, "0123456789") == (
        "train: train diverged at step 3 (loss inf); lower train.lr"
    )
    theirs = LOG.replace("error: train diverged at step 3 (loss inf); lower train.lr\n", "")
    assert failure_line(theirs, "0123456789").startswith("ERROR: failed to reproduce 'train'")
    assert failure_line("", "0123456789") == "see `dvc queue logs 0123456`"


def test_workers_are_not_started_again_while_the_first_ones_start(monkeypatch):
    """A worker not yet up looks absent; starting it again made a second worker of the same
    name (and a sweep that never saw its last experiment end)."""
    starts = []

    class Proc:
        def processes(self):
            return iter(())  # no pid file written yet

    class Celery:
        proc = Proc()

    class Experiments:
        celery_queue = Celery()

    class Repo:
        experiments = Experiments()
        root_dir = "."

    clock = iter([100.0, 101.0, 114.0, 116.0, 116.0])
    monkeypatch.setattr(sweep.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(sweep.Queue, "_spawn", lambda self, count: starts.append(count))
    queue = sweep.Queue(Repo())
    queue.start(2)  # starts them at 100
    queue.start(2)  # 101: still starting
    queue.start(2)  # 114: still inside WORKER_START
    queue.start(2)  # 116: gone (DVC stops idle workers): started again
    assert starts == [2, 2]


def test_a_failed_start_of_the_workers_is_said_in_one_line(tmp_path, monkeypatch):
    """The workers are started by `dvc queue start` in a process of its own; if that fails,
    the next start says what it said instead of waiting for workers forever."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'progress...'\necho 'ERROR: no broker here' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sweep.sys, "executable", str(fake))

    class Repo:
        class experiments:
            celery_queue = None

        root_dir = str(tmp_path)

    queue = sweep.Queue(Repo())
    queue._spawn(2)
    with pytest.raises(
        PipelineError, match=r"^`dvc queue start --jobs 2` failed: ERROR: no broker here;"
    ):
        queue._spawn(2)


def test_queuing_waits_while_a_worker_holds_the_queue(monkeypatch):
    """DVC's queue_one fails at once with LockError while a worker takes its next
    experiment from the stash (seen in CI: a traceback mid-sweep); DVC's own workers wait
    for that lock, and so does the sweep, up to QUEUE_LOCKED seconds."""
    from dvc.lock import LockError

    class Entry:
        stash_rev, name = "0123456789abcdef", "lucky-name"

    class Experiments:
        celery_queue = None
        locked_for = 2  # attempts that find the lock held

        def __init__(self):
            self.attempts = []

        def queue_one(self, queue, params):
            self.attempts.append(params)
            if len(self.attempts) <= self.locked_for:
                raise LockError("'refs/exps/celery/stash' is busy")
            return Entry()

    class Repo:
        root_dir = "."

        def __init__(self):
            self.experiments = Experiments()

    clock = [0.0]
    monkeypatch.setattr(sweep.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(sweep.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    exp = Experiment((("train.lr", "10"),))
    repo = Repo()
    assert sweep.Queue(repo).put(exp) == ("0123456789abcdef", "lucky-name")
    assert repo.experiments.attempts == [{"params.yaml": ["train.lr=10"]}] * 3

    Experiments.locked_for = 10**9  # never released
    with pytest.raises(PipelineError, match=r"^DVC's experiment queue stayed locked for 180 s"):
        sweep.Queue(Repo()).put(exp)
    assert clock[0] > sweep.QUEUE_LOCKED


def test_a_dvc_failure_mid_sweep_is_one_line(project, monkeypatch):
    from dvc.exceptions import DvcException

    class Repo:  # DVC's Repo(".") as a context manager, nothing in it
        def __init__(self, root):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def put(self, exp):
        raise DvcException("the queue's stash is unreadable")

    monkeypatch.setattr("dvc.repo.Repo", Repo)
    monkeypatch.setattr(sweep.Queue, "__init__", lambda self, repo: setattr(self, "_starter", None))
    monkeypatch.setattr(sweep.Queue, "busy", lambda self: 0)
    monkeypatch.setattr(sweep.Queue, "put", put)
    monkeypatch.setattr(sweep, "dvc_stages", lambda repo: ([], set()))
    r = bigram(project, "sweep", "-S", "train.lr=10,20")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert error_line(r) == (
        "DVC failed during the sweep: the queue's stash is unreadable; 0 experiment(s) are "
        "still in DVC's queue (`dvc queue status`)"
    )
