"""Benchmark of what a user waits for around the stages: a sweep, sampling, the tests.

1. sweep: docs/experiments.md's 12-experiment grid on names.txt (context 1-3 × two
   train.reg × two compare.smoothing, 1000 steps) in a copy of a clone of HEAD set up as
   docs/your-own-names.md leaves it (names-full.txt tracked with `dvc add`, its run
   committed). `bigram sweep --jobs 1` and
   `--jobs <cores>` alternate, each in a fresh copy; the floor is the one-worker sweep, the
   target all workers ≤ 0.6× it. DVC's plain queue (`dvc exp run --queue` + `dvc queue start`,
   one worker) is measured once as well, for reference. Failed experiments are counted.
2. sampling: the sample stage (`python -m stages.sample`, one process) on the model the
   clone trained on names.txt, with sample.count 20 (the floor: reading, writing, imports),
   20,000 and 1,000,000: wall time and peak RSS; and the one-at-a-time loop the stage used
   before (tests/test_sampling.py keeps it as the reference) on 20,000 names, in this process.
3. tests: the quick loop, `pytest -m "not slow" -n 2`, in a clone of HEAD: wall time; the
   target is 15 s.

    python scripts/bench_workflow.py [--repeats 3] [--skip sweep,sampling,tests] [--commit REV]

With an older --commit (before `bigram sweep`), section 1 measures DVC's queue itself on 1
and on all workers, as the README ran the grid then.

scripts/bench.py runs it too, after its own sections.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = os.path.dirname(sys.executable)
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
    "DVC_NO_ANALYTICS": "1",
}
GRID = [
    "-S", "model.context=1,2,3",
    "-S", "train.reg=0.001,0.1",
    "-S", "compare.smoothing=0.1,1",
    "-S", "train.lr=50",
    "-S", "train.steps=1000",
]  # fmt: skip


def sh(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and r.returncode:
        sys.exit(f"{' '.join(args)} failed in {cwd}:\n{r.stdout}{r.stderr}")
    return r


def timed(
    *args: str, cwd: Path, check: bool = True
) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    r = sh(*args, cwd=cwd, check=check)
    return time.perf_counter() - t, r


def fmt(t: float) -> str:
    return f"{t:.1f} s" if t >= 1 else f"{t * 1000:.0f} ms"


def readme_project(dst: Path, names: Path, commit: str) -> Path:
    """A clone of `commit` as docs/your-own-names.md leaves it before the sweep: the full
    list copied in, tracked with `dvc add`, run and committed."""
    sh("git", "clone", "-q", str(ROOT), str(dst), cwd=Path("/"))
    sh("git", "checkout", "-q", commit, cwd=dst)
    for key, value in (("user.name", "bench"), ("user.email", "bench@example.com")):
        sh("git", "config", key, value, cwd=dst)
    shutil.copy(names, dst / "data/names-full.txt")
    sh("dvc", "add", "-q", "data/names-full.txt", cwd=dst)
    sh("git", "add", "data/names-full.txt.dvc", "data/.gitignore", cwd=dst)
    sh("dvc", "exp", "run", "-q", "-S", "data.names=data/names-full.txt", cwd=dst)
    sh("git", "add", "-A", cwd=dst)
    sh("git", "commit", "-qm", "bench: the full list", cwd=dst)
    return dst


def one_sweep(base: Path, run: Path, jobs: int, plain: bool) -> tuple[float, int]:
    """Wall seconds and failed experiments of the grid in a fresh copy of `base`: with
    `bigram sweep --jobs`, or (plain) DVC's queue as the README ran it before the sweep
    command, `dvc queue start --jobs`."""
    shutil.copytree(base, run, symlinks=True)
    try:
        if not plain:
            t, r = timed("bigram", "sweep", *GRID, "--jobs", str(jobs), cwd=run, check=False)
        else:
            t0 = time.perf_counter()
            sh("dvc", "exp", "run", "--queue", *GRID, cwd=run)
            sh("dvc", "queue", "start", "--jobs", str(jobs), cwd=run)
            while True:  # the README's old wait, every 2 s
                status = sh("dvc", "queue", "status", cwd=run).stdout
                if status.count("Success") + status.count("Failed") >= 12:
                    break
                time.sleep(2)
            t = time.perf_counter() - t0
        status = sh("dvc", "queue", "status", cwd=run).stdout
        return t, 12 - status.count("Success")
    finally:
        sh("dvc", "queue", "stop", "--kill", cwd=run, check=False)
        shutil.rmtree(run, ignore_errors=True)


def bench_sweep(tmp: Path, names: Path, commit: str, repeats: int) -> dict:
    base = readme_project(tmp / "sweep-base", names, commit)
    cores = len(os.sched_getaffinity(0))
    # Before `bigram sweep` (an older --commit), DVC's own queue on 1 and on all workers.
    before = not (base / "bigram/sweep.py").exists()
    one, every, failed = [], [], 0
    for i in range(repeats):  # alternating, so a busy moment hurts both
        t, f = one_sweep(base, tmp / f"sweep-1-{i}", 1, before)
        one.append(t)
        failed += f
        t, f = one_sweep(base, tmp / f"sweep-all-{i}", cores, before)
        every.append(t)
        failed += f
        print(f"sweep {i + 1}/{repeats}: 1 worker {fmt(one[-1])}, {cores} workers {fmt(every[-1])}")
    plain = one[0]
    if not before:
        plain, f = one_sweep(base, tmp / "sweep-plain", 1, True)
        failed += f
        print(f"sweep: DVC's plain queue, 1 worker: {fmt(plain)}")
    return {
        "command": "DVC's queue" if before else "`bigram sweep`",
        "one": statistics.median(one),
        "all": statistics.median(every),
        "cores": cores,
        "plain": plain,
        "runs": 2 * repeats + (not before),
        "failed": failed,
    }


def peak_child_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def bench_sampling(
    tmp: Path, names: Path, commit: str, repeats: int
) -> dict[int | str, tuple[float, float]]:
    d = tmp / "sampling"
    sh("git", "clone", "-q", str(ROOT), str(d), cwd=Path("/"))
    sh("git", "checkout", "-q", commit, cwd=d)
    shutil.copy(names, d / "data/names-full.txt")
    import yaml

    params = yaml.safe_load((d / "params.yaml").read_text())
    params["data"]["names"] = "data/names-full.txt"
    for stage in ("prepare", "split", "train"):
        (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        sh(sys.executable, "-m", f"stages.{stage}", cwd=d)
    out: dict[int | str, tuple[float, float]] = {}
    for count in (20, 20_000, 1_000_000):
        params["sample"]["count"] = count
        (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        times, rss = [], []
        for _ in range(repeats):
            # a fresh process per run; its peak RSS is read from /usr/bin/time's report
            t, r = timed(
                "/usr/bin/time", "-f", "%M", sys.executable, "-m", "stages.sample", cwd=d,
                check=False,
            )  # fmt: skip
            if r.returncode:
                print(f"sample stage, {count:,} names: {r.stderr.strip().splitlines()[0]}")
                break
            times.append(t)
            rss.append(int(r.stderr.strip().splitlines()[-1]) / 1024)
        if times:
            out[count] = (statistics.median(times), max(rss))
            print(f"sample stage, {count:,} names: {fmt(out[count][0])}, {out[count][1]:.0f} MiB")
    if not (d / "tests/test_sampling.py").exists():
        return out  # an older --commit: no vectorised draw to compare
    # The one-at-a-time loop on the same model, in this process.
    sys.path.insert(0, str(d))
    from bigram import checkpoint
    from bigram.model import distributions
    from bigram.sampling import draw
    from tests.test_sampling import one_at_a_time

    cwd = os.getcwd()
    os.chdir(d)
    try:
        vocab = json.loads(Path("data/prepared/vocab.json").read_text())
        P = distributions(checkpoint.read(vocab=vocab)[0])[1]
    finally:
        os.chdir(cwd)
    t = time.perf_counter()
    one_at_a_time(P, 20_000, 42, 50)
    loop = time.perf_counter() - t
    t = time.perf_counter()
    draw(P, 20_000, 42, 50)
    vectorised = time.perf_counter() - t
    print(f"drawing 20,000 names: one at a time {fmt(loop)}, all at once {fmt(vectorised)}")
    out["loop"], out["draw"] = (loop, 0.0), (vectorised, 0.0)
    return out


def bench_tests(tmp: Path, commit: str, repeats: int) -> list[float]:
    d = tmp / "tests"
    (tmp / "shared/data").mkdir(parents=True, exist_ok=True)  # the full list, as beside ROOT
    shutil.copy(ROOT.parent / "shared/data/names.txt", tmp / "shared/data/names.txt")
    sh("git", "clone", "-q", str(ROOT), str(d), cwd=Path("/"))
    sh("git", "checkout", "-q", commit, cwd=d)
    times = []
    for _ in range(repeats):
        t, r = timed(
            sys.executable, "-m", "pytest", "-m", "not slow", "-n", "2", "-q", "-p",
            "no:cacheprovider", cwd=d,
        )  # fmt: skip
        times.append(t)
        print(f"quick loop: {fmt(t)} ({r.stdout.strip().splitlines()[-1]})")
    return times


def table(sweep: dict | None, sampling: dict | None, tests: list[float] | None) -> str:
    rows = ["| measure | median | floor or target | ratio |", "|---|---:|---|---:|"]
    if sweep:
        rows += [
            f"| sweep grid, {sweep['command']}, 1 worker | {fmt(sweep['one'])} | the floor | 1 |",
            f"| sweep grid, {sweep['command']}, {sweep['cores']} workers | {fmt(sweep['all'])} "
            f"| ≤ 0.6× one worker | {sweep['all'] / sweep['one']:.2f}× |",
            f"| sweep grid, DVC's plain queue, 1 worker (once) | {fmt(sweep['plain'])} | "
            f"reference | {sweep['plain'] / sweep['one']:.2f}× |",
            f"| failed experiments in {sweep['runs']} grids | {sweep['failed']} | 0 | |",
        ]
    if sampling:
        floor = sampling[20][0]
        for count in (20_000, 1_000_000):
            if count not in sampling:
                rows.append(f"| sample stage, {count:,} names | refused | | |")
                continue
            t, rss = sampling[count]
            rows.append(
                f"| sample stage, {count:,} names ({rss:.0f} MiB) | {fmt(t)} | "
                f"count 20: {fmt(floor)} | {t / floor:.1f}× |"
            )
        if "draw" in sampling:
            rows.append(
                f"| drawing 20,000 names, all at once | {fmt(sampling['draw'][0])} | one at a "
                f"time: {fmt(sampling['loop'][0])} | "
                f"{sampling['loop'][0] / sampling['draw'][0]:.0f}× faster |"
            )
    if tests:
        rows.append(f'| `pytest -m "not slow" -n 2` | {fmt(statistics.median(tests))} | ≤ 15 s | |')
    return "\n".join(rows)


def run(names: Path, repeats: int, skip: set[str], commit: str) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-workflow-") as tmp:
        tmp_path = Path(tmp)
        ENV["DVC_SITE_CACHE_DIR"] = str(tmp_path / "dvc-site")
        sweep = None if "sweep" in skip else bench_sweep(tmp_path, names, commit, repeats)
        sampling = None if "sampling" in skip else bench_sampling(tmp_path, names, commit, repeats)
        tests = None if "tests" in skip else bench_tests(tmp_path, commit, repeats)
    return table(sweep, sampling, tests)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", type=Path, default=ROOT.parent / "shared/data/names.txt")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma list of: sweep,sampling,tests")
    ap.add_argument("--commit", default="HEAD", help="measure this commit (e.g. an older one)")
    a = ap.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", a.commit], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    load = open("/proc/loadavg").read().split()[0]
    print(f"commit {commit[:7]}, {os.cpu_count()} cores, load average {load} at start")
    skip = set(filter(None, a.skip.split(",")))
    print(run(a.names.resolve(), a.repeats, skip, commit))


if __name__ == "__main__":
    main()
