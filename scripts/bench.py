"""Benchmark of the pipeline; prints medians of --repeats runs and Markdown tables.

1. training: the notebook's one-hot loop (tests/notebook.py) against the train stage's
   `bigram.training.fit` on the train split's V×V counts, 200 steps on names.txt: median time
   of each, their ratio and max |ΔW| of the final W.
2. DVC against its own floor, on names.txt. Two temporary clones of the committed HEAD with
   a copy of names.txt in data/ as data.names: "ours", and "floor", whose dvc.yaml has
   every stage's cmd replaced by `python floor.py <outs>`, a stand-in that only writes the
   stage's outs (same graph, deps, params and outs, read from dvc.yaml at HEAD). Ours and the
   floor run alternately (ours, floor, ours, floor, ...), and each command's wall time and CPU
   time (user + sys of DVC and everything it waited for) are taken:
   - cold `dvc repro -f`: a fresh clone per run, so there is no DVC cache or run-cache;
   - no-op `dvc repro`: nothing to do;
   - `dvc exp run -S train.lr=<10 + i·0.001>`: a fresh value per run, the same in both repos,
     so the run-cache never answers; each repo is reset to its baseline between runs.
   The targets (ours ≤ 1.3× the floor for exp run, ≤ 3× for cold repro -f) are judged on CPU
   time, which another process on a shared machine disturbs less than wall time.
3. scaling: synthetic names lists (sampled with a fixed seed from the count-based bigram
   model of names.txt), each run through the stages in a clone, one
   `python -m stages.<name>` process per stage: wall time and peak RSS (rusage of the
   process) of each, and a cold `dvc repro` for sizes up to --dvc-max names.
4. vocabularies: ~50,000 synthetic names over V symbols (a-z and '.' for V = 27, CJK code
   points from U+4E00 beyond), run stage by stage as in 3. A stage that fails or runs past
   --stage-timeout shows its one-line error; the stages after it are not run.
5. contexts: names.txt with model.context = k (W is V^k×V) and otherwise default params,
   run stage by stage as in 3, for each k of --contexts (default 1-4; k = 4 is the largest
   W the split stage allows on names.txt).
6-8. what a user waits for around the stages, from scripts/bench_workflow.py (which runs
   alone too): docs/experiments.md's sweep on 1 and on all workers, the sample stage at 20,000 and
   1,000,000 names, and the quick test loop.

Run from the project root with the project's venv active:

    python scripts/bench.py                    # --repeats 5, sizes 100k and 1M, V up to 3000,
                                               # contexts 1-4
    python scripts/bench.py --sizes 100000,1000000,10000000     # add 10M names
    python scripts/bench.py --quick            # 1-2 repeats, 100k names, V up to 300,
                                               # contexts 1-2

Everything is written to a temporary directory that is removed at the end.
"""

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path, PurePosixPath

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench_workflow  # noqa: E402
import yaml  # noqa: E402

from bigram.names import encode, parse_names  # noqa: E402
from bigram.params import TrainParams  # noqa: E402
from bigram.splitting import split_counts, split_pairs  # noqa: E402

BIN = os.path.dirname(sys.executable)  # the venv's bin, not resolved: dvc.yaml's `python`
DVC = os.path.join(BIN, "dvc")
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
    "DVC_NO_ANALYTICS": "1",
}
MiB = 1024
COMMIT = ""  # the HEAD measured, fixed at start: commits made meanwhile do not leak in
STAGES: dict[str, dict] = {}  # dvc.yaml's stages at COMMIT, in file order


def median(xs):
    return statistics.median(xs)


def fmt_s(t):
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


def runs(xs):
    return ", ".join(fmt_s(x) for x in xs)


# --- helpers -----------------------------------------------------------------


def sh(*args, cwd):
    r = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(map(str, args))} failed in {cwd}:\n{r.stdout}{r.stderr}")
    return r.stdout + r.stderr


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_dvc(cwd, *args):
    """Wall seconds, CPU seconds (user + sys of dvc and of the processes it waited for:
    the stages) and the output of one dvc command."""
    cpu, t = children_cpu(), time.perf_counter()
    out = sh(DVC, *args, cwd=cwd)
    return time.perf_counter() - t, children_cpu() - cpu, out


def ran(output):
    if "is cached" in output:
        sys.exit(f"DVC restored a stage from its run-cache; the timing would be wrong:\n{output}")
    return sorted(re.findall(r"Running stage '([\w-]+)'", output))


# --- the pipeline's graph, from dvc.yaml -------------------------------------


def paths(spec, *keys):
    """The paths listed under keys (each item a path, or {path: options})."""
    return [
        p
        for key in keys
        for item in spec.get(key) or []
        for p in ([item] if isinstance(item, str) else item)
    ]


def outs(spec):
    return paths(spec, "outs", "metrics", "plots")


def uses_param(spec, key):
    """Whether the stage's params include `key` (itself or its section)."""
    keys = []
    for item in spec.get("params") or []:  # a key, or {params file: [keys]}
        keys += [item] if isinstance(item, str) else [k for ks in item.values() for k in ks]
    return any(key == k or key.startswith(k + ".") for k in keys)


def upstream(name):
    """The stages whose outs `name` reads."""

    def under(a, b):
        return a == b or a.startswith(b.rstrip("/") + "/")

    return [
        s
        for s, spec in STAGES.items()
        if any(under(d, o) or under(o, d) for d in paths(STAGES[name], "deps") for o in outs(spec))
    ]


def affected(changed):
    """The stages that rerun when the stages in `changed` do: they and all below them."""
    result = set(changed)
    for _ in STAGES:
        result |= {s for s in STAGES if set(upstream(s)) & result}
    return sorted(result)


# --- clones ------------------------------------------------------------------


def git_clone(src, dst, rev=None):
    sh("git", "clone", "-q", str(src), str(dst), cwd="/")
    if rev:
        sh("git", "reset", "-q", "--hard", rev, cwd=dst)
    for key, value in (
        ("user.name", "bench"),
        ("user.email", "bench@example.com"),
        ("commit.gpgsign", "false"),
    ):
        sh("git", "config", key, value, cwd=dst)
    return dst


def clone(dst, names):
    """A git clone of the project at COMMIT whose data.names is a copy of `names` in its
    data/ (the pipeline takes names files inside the project only), committed."""
    git_clone(ROOT, dst, COMMIT)
    shutil.copy(names, dst / "data/bench-names.txt")
    params = dst / "params.yaml"
    text, n = re.subn(
        r"(?m)^(  names:\s*)\S+",
        lambda m: m.group(1) + "data/bench-names.txt",
        params.read_text(),
        count=1,
    )
    assert n == 1, "data.names not found in params.yaml"
    params.write_text(text)
    sh("git", "add", "-A", cwd=dst)
    sh("git", "commit", "-qm", "bench: data.names", cwd=dst)
    return dst


# The floor's stand-in for every stage: it writes the stage's outs and nothing else. The
# content is new on every run, as a real stage's is when a param changes, so that DVC
# stores each out again and the stages below see a changed dep.
FLOOR = '''"""Stand-in for a stage: writes the outs named (a directory when it ends in /)."""
import json, os, sys, time
stamp = time.time_ns()
for out in sys.argv[1:]:
    path = os.path.join(out, "floor.txt") if out.endswith("/") else out
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        if path.endswith(".json"):
            json.dump({"stamp": stamp}, f)
        elif path.endswith(".csv"):
            f.write("step,value\\n")
        else:
            f.write(f"{stamp} {out}\\n")
'''


def make_floor(src, dst, dirs):
    """A clone of src whose stages run FLOOR instead of their cmd; `dirs` are the outs
    that are directories."""
    git_clone(src, dst)
    dvc_yaml = yaml.safe_load((dst / "dvc.yaml").read_text())
    for spec in dvc_yaml["stages"].values():
        args = [out + "/" if out in dirs else out for out in outs(spec)]
        spec["cmd"] = " ".join(["python floor.py", *args])
    (dst / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False, width=1000))
    (dst / "floor.py").write_text(FLOOR)
    sh("git", "add", "dvc.yaml", "floor.py", cwd=dst)
    sh("git", "commit", "-qm", "bench: the floor's stand-in stages", cwd=dst)
    return dst


# A stage is forked by this small launcher, not by the benchmark: a child's ru_maxrss
# counts the memory of the process it was forked from until its exec (Linux), and the
# benchmark holds torch and the notebook's tensors. The launcher adds ~10 MiB at most.
# A stage still running after the timeout is killed.
LAUNCHER = """
import os, signal, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1), os.dup2(fd, 2)
    os.execv(sys.executable, [sys.executable, "-m", "stages." + sys.argv[1]])
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(int(sys.argv[3]))
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - t, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_stage(cwd, name, timeout=24 * 3600):
    """Wall seconds and peak RSS (MiB) of one `python -m stages.<name>` process, and None,
    or its one-line error when it failed."""
    log = cwd / f".bench-{name}.log"
    out = sh(sys.executable, "-c", LAUNCHER, name, str(log), str(timeout), cwd=cwd)
    wall, maxrss, code = out.split()
    wall, rss, error = float(wall), int(maxrss) / MiB, None  # ru_maxrss is KiB on Linux
    if int(code):
        lines = [line.strip() for line in log.read_text().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        error = (errors or lines or [f"exit code {code}"])[-1]
        if wall >= timeout:
            error = f"killed after {timeout} s"
    return wall, rss, error


def cold_repro(tmp, names, repeats, tag):
    """Median wall time of `dvc repro` in a fresh clone (empty cache and run-cache) per repeat."""
    times = []
    for i in range(repeats):
        d = clone(tmp / f"{tag}-cold{i}", names)
        t, _, out = timed_dvc(d, "repro")
        assert ran(out) == sorted(STAGES), out
        times.append(t)
        if i < repeats - 1:
            shutil.rmtree(d)
    return median(times), d


# --- 0. the machine ----------------------------------------------------------


def machine():
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = (
        int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")))
        / 1024**2
    )
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("torch", "numpy", "dvc"))
    status = sh("git", "status", "--porcelain", "--", "bigram", "stages", "tests", cwd=ROOT)
    dirty = sorted({line[3:].split("/")[0] for line in status.splitlines()})
    line = (
        f"{cpu}, {os.cpu_count()} cores, {mem:.1f} GiB RAM; "
        f"Python {platform.python_version()}, {versions}"
    )
    print(f"machine: {line}; load average {open('/proc/loadavg').read().split()[0]} at start")
    print(
        f"project: HEAD {COMMIT[:7]} (sections 2-5 measure HEAD; section 1 imports the working "
        "tree" + (f", with uncommitted changes in {', '.join(dirty)})" if dirty else ", clean)")
    )
    return line


# --- 1. the notebook's loop vs fit -------------------------------------------


def bench_training(names_path, repeats, steps=200):
    import torch  # the notebook's loop is torch

    from bigram.training import fit
    from tests import notebook

    # The train stage's input: the train split's counts, built as prepare and split build them.
    vocab, pairs = encode(parse_names(names_path.read_bytes(), str(names_path)))
    assign = split_pairs(pairs, 42, 0.8, 0.1, "pairs")
    counts = split_counts(pairs, assign, len(vocab))[0]
    train = TrainParams(seed=42, lr=50.0, reg=0.01, steps=steps, checkpoint_every=50)
    t = time.perf_counter()
    fit(counts, train)
    first = time.perf_counter() - t
    fit_times, nb_times = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        W_fit = fit(counts, train)[0]
        fit_times.append(time.perf_counter() - t)
    words = names_path.read_text().splitlines()
    _, xs, ys = notebook.build(words)
    (xtr, ytr), _, _ = notebook.split(xs, ys)
    assert len(xtr) == counts.sum() and len(vocab) == 27
    for _ in range(repeats):
        t = time.perf_counter()
        W_nb = notebook.train(xtr, ytr, len(vocab), steps)[0]
        nb_times.append(time.perf_counter() - t)
    dW = float(np.abs(W_nb.numpy() - W_fit).max())
    r = {
        "nb": median(nb_times),
        "fit": median(fit_times),
        "dW": dW,
        "first": first,
        "threads": torch.get_num_threads(),
    }
    r["ratio"] = r["nb"] / r["fit"]
    print(
        f"\n## 1. training, {steps} steps on {names_path.name} "
        f"({len(xtr)} train pairs, V={len(vocab)}, torch threads {r['threads']})"
    )
    print(f"notebook one-hot loop  {fmt_s(r['nb'])}   (runs: {runs(nb_times)})")
    print(
        f"training.fit           {fmt_s(r['fit'])}   (runs: {runs(fit_times)}; "
        f"first call, not in the median: {fmt_s(first)})"
    )
    print(f"ratio {r['ratio']:.0f}x, max |dW| = {dW:.2e}")
    return r


# --- 2. DVC against its floor, on names.txt ----------------------------------

DVC_TARGETS = {"cold": 3.0, "exp": 1.3}  # ours / floor, CPU time


def bench_dvc(tmp, names_path, repeats):
    ours = clone(tmp / "ours", names_path)
    # An untimed run of ours first: it warms the OS's file cache for both, and tells which
    # outs are directories (an out not written is taken as one when it has no suffix).
    warm = git_clone(ours, tmp / "ours-warm")
    out = timed_dvc(warm, "repro")[2]
    assert ran(out) == sorted(STAGES), out
    dirs = {
        path
        for spec in STAGES.values()
        for path in outs(spec)
        if (warm / path).is_dir() or not ((warm / path).exists() or PurePosixPath(path).suffix)
    }
    shutil.rmtree(warm)
    floor = make_floor(ours, tmp / "floor", dirs)
    warm = git_clone(floor, tmp / "floor-warm")
    assert ran(timed_dvc(warm, "repro")[2]) == sorted(STAGES)
    shutil.rmtree(warm)
    repos = {"ours": ours, "floor": floor}
    r: dict[str, dict[str, list]] = {
        kind: {who: [] for who in repos} for kind in ("cold", "noop", "exp")
    }

    # cold dvc repro -f: a fresh clone of each per run; the last ones are kept as baselines.
    base: dict[str, Path] = {}
    for i in range(repeats):
        for who, repo in repos.items():
            d = git_clone(repo, tmp / f"{who}-cold{i}")
            wall, cpu, out = timed_dvc(d, "repro", "-f")
            assert ran(out) == sorted(STAGES), out
            r["cold"][who].append((wall, cpu))
            if who in base:
                shutil.rmtree(base[who])
            base[who] = d
    for d in base.values():
        sh("git", "add", "-A", cwd=d)
        sh("git", "commit", "-qm", "bench: baseline run", cwd=d)

    # `bigram check` re-runs every stage of the baseline's dvc.lock in a scratch copy:
    # its cost is compared with a cold `dvc repro -f` of ours (issue: at most about 2×).
    r["check"] = {"ours": []}
    for _ in range(repeats):
        before = children_cpu()
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bigram", "check"], cwd=base["ours"], capture_output=True
        )
        wall = time.perf_counter() - start
        assert done.returncode == 0, done.stdout.decode()[-2000:]
        r["check"]["ours"].append((wall, children_cpu() - before))

    for _ in range(repeats):
        for who, d in base.items():
            wall, cpu, out = timed_dvc(d, "repro")
            assert ran(out) == [], out
            r["noop"][who].append((wall, cpu))

    expected = affected([s for s, spec in STAGES.items() if uses_param(spec, "train.lr")])
    for i in range(repeats):
        for who, d in base.items():
            wall, cpu, out = timed_dvc(d, "exp", "run", "-S", f"train.lr={10 + i * 0.001:g}")
            assert ran(out) == expected, out
            r["exp"][who].append((wall, cpu))
            # Back to the baseline, with no experiment left from this run.
            sh("git", "reset", "-q", "--hard", cwd=d)
            sh(DVC, "checkout", "-q", "--force", cwd=d)
            sh(DVC, "exp", "remove", "-q", "-A", cwd=d)

    for d in base.values():
        shutil.rmtree(d)
    print(
        f"\n## 2. DVC on {names_path.name}: ours against the floor (clones of HEAD, "
        f"alternating, {repeats} runs each; wall time, CPU time)"
    )
    print(f"floor: stand-in stages writing their outs; directory outs: {', '.join(sorted(dirs))}")
    for kind, label in LABELS.items():
        for who in repos:
            walls, cpus = zip(*r[kind][who])
            print(f"{label} {who:<5}  wall {runs(walls)};  CPU {runs(cpus)}")
    walls, cpus = zip(*r["check"]["ours"])
    print(f"`bigram check` ours  wall {runs(walls)};  CPU {runs(cpus)}")
    return r


LABELS = {
    "cold": "cold `dvc repro -f`",
    "noop": "no-op `dvc repro`",
    "exp": "`dvc exp run -S train.lr=…`",
}


def dvc_table(dv):
    print(
        "\n| names.txt | ours, wall | floor, wall | ratio | ours, CPU | floor, CPU | ratio "
        "| target (CPU ratio) | |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for kind, label in LABELS.items():
        ours = [median(x[i] for x in dv[kind]["ours"]) for i in (0, 1)]
        floor = [median(x[i] for x in dv[kind]["floor"]) for i in (0, 1)]
        cells = []
        for i in (0, 1):
            cells += [fmt_s(ours[i]), fmt_s(floor[i]), f"{ours[i] / floor[i]:.2f}×"]
        target = DVC_TARGETS.get(kind)
        verdict = (
            ["", ""] if target is None else [f"≤ {target:g}×", check(ours[1] / floor[1] <= target)]
        )
        print(f"| {label} | " + " | ".join(cells + verdict) + " |")
    print(
        "\n(medians; CPU = user + sys of dvc and its stages; the floor is the same dvc.yaml with "
        "every cmd replaced by a stand-in that only writes the stage's outs; the targets are "
        "judged on CPU time, less disturbed than wall time by other load on the machine)"
    )


# --- 3. scaling on synthetic names -------------------------------------------


def synth_names(path, n, names_path, seed=0, chunk=1_000_000, max_len=63):
    """Write n names drawn from the count-based bigram model of names_path; every name of
    a chunk advances one character per numpy step (names are cut at max_len characters)."""
    vocab, pairs = encode(parse_names(names_path.read_bytes(), str(names_path)))
    V = len(vocab)
    counts = np.bincount(pairs[0].astype(np.int64) * V + pairs[1], minlength=V * V).reshape(V, V)
    cdf = np.cumsum(counts / counts.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    flat = (cdf + np.arange(V)[:, None]).ravel()  # row i shifted by i: one searchsorted for all
    lut = np.frombuffer(("\n" + "".join(vocab[1:])).encode("ascii"), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            codes = np.zeros((m, max_len + 1), dtype=np.uint8)  # 0 ('.') ends a name
            alive, state = np.arange(m), np.zeros(m, dtype=np.int64)
            for t in range(max_len):
                nxt = (
                    np.searchsorted(flat, state + rng.random(len(alive)), side="right") - state * V
                )
                nxt = np.minimum(nxt, V - 1)
                codes[alive, t] = nxt
                alive, state = alive[nxt != 0], nxt[nxt != 0]
                if not len(alive):
                    break
            lengths = (codes != 0).argmin(axis=1)
            f.write(lut[codes[np.arange(max_len + 1) <= lengths[:, None]]].tobytes())


def stage_runs(d, repeats, timeout=24 * 3600):
    """Every stage run `repeats` times in the clone d: {stage: [(wall, rss)]}, and
    {stage: error} of the stages that failed or were not run because a stage above failed."""
    results: dict[str, list] = {s: [] for s in STAGES}
    errors: dict[str, str] = {}
    for _ in range(repeats):
        for s in STAGES:
            failed = [u for u in upstream(s) if u in errors]
            if failed:  # named after the first stage that did run and fail
                above = errors[failed[0]]
                errors[s] = above if above.startswith("not run") else f"not run: {failed[0]} failed"
                continue
            wall, rss, error = run_stage(d, s, timeout)
            if error:
                errors[s] = error
            else:
                results[s].append((wall, rss))
        if errors:  # the stages are deterministic: a failure would only repeat
            break
    return results, errors


def bench_size(tmp, n, names_path, repeats, dvc_max):
    path = tmp / f"names-{n}.txt"
    t = time.perf_counter()
    synth_names(path, n, names_path)
    gen = time.perf_counter() - t
    d = clone(tmp / f"stages-{n}", path)
    results, errors = stage_runs(d, repeats)
    if errors:
        sys.exit(f"{n:,} names: " + "; ".join(f"stage {s}: {e}" for s, e in errors.items()))
    shutil.rmtree(d)
    r = {
        "n": n,
        "gen": gen,
        "mb": path.stat().st_size / 1e6,
        "time": {s: median(w for w, _ in results[s]) for s in STAGES},
        "rss": {s: max(m for _, m in results[s]) for s in STAGES},
        "total": median(sum(results[s][i][0] for s in STAGES) for i in range(repeats)),
    }
    r["repro"] = None
    if n <= dvc_max:
        r["repro"], d = cold_repro(tmp, path, repeats, f"n{n}")
        shutil.rmtree(d)
    path.unlink()
    print(
        f"\n## 3. {n:,} synthetic names ({r['mb']:.0f} MB, generated in {fmt_s(gen)}; "
        f"medians of {repeats}, peak RSS = max)"
    )
    for s in STAGES:
        print(f"  {s:<9} {fmt_s(r['time'][s]):>9}  {r['rss'][s]:7.0f} MiB")
    print(
        f"  {'total':<9} {fmt_s(r['total']):>9}"
        + (f"   cold dvc repro {fmt_s(r['repro'])}" if r["repro"] is not None else "")
    )
    return r


# --- 4. large vocabularies ---------------------------------------------------


def vocab_names(path, V, n=50_000, seed=0):
    """Write n names (2 to 10 characters, uniform) over V - 1 symbols, each used at least
    once, so that the vocabulary with '.' has V symbols: a, b, ... for V ≤ 27, else the CJK
    code points from U+4E00."""
    base = ord("a") if V <= 27 else 0x4E00
    symbols = [chr(base + i) for i in range(V - 1)]
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 11, n)
    codes = rng.integers(0, V - 1, lengths.sum())
    codes[rng.choice(len(codes), V - 1, replace=False)] = np.arange(V - 1)
    text = "".join(symbols[c] for c in codes)
    ends = np.cumsum(lengths)
    path.write_text("".join(text[e - k : e] + "\n" for e, k in zip(ends, lengths)))


def bench_vocab(tmp, V, repeats, timeout):
    path = tmp / f"vocab-{V}.txt"
    vocab_names(path, V)
    d = clone(tmp / f"vocab-{V}", path)
    mb = path.stat().st_size / 1e6
    results, errors = stage_runs(d, repeats, timeout)
    if "prepare" in STAGES and "prepare" not in errors:
        got = yaml.safe_load((d / "metrics/prepare.json").read_text()).get("vocab_size")
        assert got in (None, V), f"asked for V = {V}, prepare found {got} symbols"
    shutil.rmtree(d)
    path.unlink()
    heading = f"## 4. V = {V}: 50,000 synthetic names ({mb:.1f} MB; medians of {repeats})"
    return {"V": V, **stage_summary(results, errors, repeats, heading)}


def stage_summary(results, errors, repeats, heading):
    """Medians and peaks of stage_runs' results, printed under `heading`: {errors, time,
    rss, total}, total None if a stage failed."""
    r = {"errors": errors, "time": {}, "rss": {}, "total": None}
    for s, rs in results.items():
        if s not in errors:
            r["time"][s] = median(w for w, _ in rs)
            r["rss"][s] = max(m for _, m in rs)
    if not errors:
        r["total"] = median(sum(results[s][i][0] for s in STAGES) for i in range(repeats))
    print(f"\n{heading}")
    for s in STAGES:
        cell = errors.get(s) or f"{fmt_s(r['time'][s]):>9}  {r['rss'][s]:7.0f} MiB"
        print(f"  {s:<9} {cell}")
    if r["total"] is not None:
        print(f"  {'total':<9} {fmt_s(r['total']):>9}")
    return r


# --- 5. contexts ------------------------------------------------------------


def bench_context(tmp, k, names_path, repeats, timeout):
    d = clone(tmp / f"context-{k}", names_path)
    params = d / "params.yaml"
    text, n = re.subn(
        r"(?m)^(model:\s*\n(?:[ \t]*(?:#.*)?\n)*  context:[ \t]*)\S+",
        lambda m: m.group(1) + str(k),
        params.read_text(),
        count=1,
    )
    assert n == 1, "model.context not found in params.yaml"
    assert yaml.safe_load(text)["model"]["context"] == k, "params.yaml: model.context not set"
    if text != params.read_text():  # k may be params.yaml's own value
        params.write_text(text)
        sh("git", "commit", "-qam", f"bench: model.context = {k}", cwd=d)
    results, errors = stage_runs(d, repeats, timeout)
    V = None
    if "prepare" in STAGES and "prepare" not in errors:
        V = yaml.safe_load((d / "metrics/prepare.json").read_text()).get("vocab_size")
    if V is None:
        V = len(encode(parse_names(names_path.read_bytes(), str(names_path)))[0])
    shutil.rmtree(d)
    heading = (
        f"## 5. model.context = {k}: {names_path.name}, W {V**k:,}×{V} "
        f"({V**k * V:,} weights; medians of {repeats})"
    )
    return {"k": k, "V": V, **stage_summary(results, errors, repeats, heading)}


# --- summary -----------------------------------------------------------------


def check(ok):
    return "met" if ok else "**missed**"


def stage_cell(r, s):
    if s in r.get("errors", {}):
        return r["errors"][s].replace("|", "\\|")
    return f"{fmt_s(r['time'][s])}, {r['rss'][s]:.0f} MiB"


def stage_row(labels, r):
    """A Markdown row: the labels, each stage's cell, and the total ('–' if a stage failed)."""
    total = fmt_s(r["total"]) if r["total"] is not None else "–"
    return "| " + " | ".join([*labels, *(stage_cell(r, s) for s in STAGES), total]) + " |"


def summary(machine_line, tr, dv, sizes, vocabs, contexts):
    rows = []
    if tr:
        rows += [
            ("notebook one-hot loop, 200 steps", fmt_s(tr["nb"]), "", ""),
            (
                "`train.fit` on counts, 200 steps",
                fmt_s(tr["fit"]),
                "≤ 25 ms",
                check(tr["fit"] <= 0.025),
            ),
            ("`train.fit`, first call in the process", fmt_s(tr["first"]), "", ""),
            ("speed-up notebook / fit", f"{tr['ratio']:.0f}×", "≥ 500×", check(tr["ratio"] >= 500)),
            ("max \\|ΔW\\|", f"{tr['dW']:.1e}", "≤ 1e-5", check(tr["dW"] <= 1e-5)),
        ]
    if dv:
        wall = {k: median(w for w, _ in dv[k]["ours"]) for k in LABELS}
        ratio = {
            k: median(c for _, c in dv[k]["ours"]) / median(c for _, c in dv[k]["floor"])
            for k in DVC_TARGETS
        }
        rows += [
            ("cold `dvc repro -f`, names.txt", fmt_s(wall["cold"]), "", ""),
            (
                "cold `dvc repro -f` / floor, CPU",
                f"{ratio['cold']:.2f}×",
                f"≤ {DVC_TARGETS['cold']:g}×",
                check(ratio["cold"] <= DVC_TARGETS["cold"]),
            ),
            ("no-op `dvc repro`", fmt_s(wall["noop"]), "≤ 1.3 s", check(wall["noop"] <= 1.3)),
            (
                "`bigram check` / cold `dvc repro -f`, wall",
                f"{median(w for w, _ in dv['check']['ours']) / wall['cold']:.2f}×",
                "≤ 2×",
                check(median(w for w, _ in dv["check"]["ours"]) <= 2 * wall["cold"]),
            ),
            ("`dvc exp run -S train.lr=…`", fmt_s(wall["exp"]), "≤ 5 s", check(wall["exp"] <= 5)),
            (
                "`dvc exp run` / floor, CPU",
                f"{ratio['exp']:.2f}×",
                f"≤ {DVC_TARGETS['exp']:g}×",
                check(ratio["exp"] <= DVC_TARGETS["exp"]),
            ),
        ]
    for r in sizes:
        if r["n"] == 1_000_000:
            rss = max(r["rss"].values())
            rows += [
                (
                    "cold `dvc repro`, 1M names",
                    fmt_s(r["repro"]),
                    "≤ 30 s",
                    check(r["repro"] <= 30),
                ),
                (
                    "max stage peak RSS, 1M names",
                    f"{rss:.0f} MiB",
                    "≤ 1024 MiB",
                    check(rss <= 1024),
                ),
            ]
    if len(sizes) > 1:
        # Linear means a constant cost per extra name on top of the fixed cost (imports):
        # compare the marginal seconds per million names between successive sizes.
        a, b = sizes[0], sizes[-1]
        marg = [
            (r2["total"] - r1["total"]) / (r2["n"] - r1["n"]) * 1e6
            for r1, r2 in zip(sizes, sizes[1:])
        ]
        rows += [
            (
                f"stage time per extra 1M names, {a['n']:,} → {b['n']:,}",
                " → ".join(f"{m:.2f} s" for m in marg),
                "~linear (≤ 1.5× drift)",
                check(max(marg) <= 1.5 * min(marg)),
            ),
            (
                f"train stage {a['n']:,} → {b['n']:,} names",
                f"{fmt_s(a['time']['train'])} → {fmt_s(b['time']['train'])}",
                "flat",
                check(b["time"]["train"] <= 1.25 * a["time"]["train"] + 0.2),
            ),
        ]
    print(f"\n## Summary\n\nOn {machine_line}, HEAD {COMMIT[:7]}:")
    if rows:
        print("\n| measurement | median | target | |\n|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    if dv:
        dvc_table(dv)
    if sizes:
        print("\n| names | " + " | ".join(STAGES) + " | total | cold `dvc repro` |")
        print("|---:|" + "---:|" * (len(STAGES) + 2))
        for r in sizes:
            cells = [stage_cell(r, s) for s in STAGES]
            repro = fmt_s(r["repro"]) if r["repro"] is not None else "–"
            print(f"| {r['n']:,} | " + " | ".join(cells) + f" | {fmt_s(r['total'])} | {repro} |")
        print("\n(stage cells: wall time, peak RSS of the stage's process)")
    if vocabs:
        print("\n| V | " + " | ".join(STAGES) + " | total |")
        print("|---:|" + "---:|" * (len(STAGES) + 1))
        for r in vocabs:
            print(stage_row([f"{r['V']:,}"], r))
        print(
            "\n(50,000 synthetic names of 2-10 symbols drawn uniformly from V - 1 symbols; "
            "stage cells: wall time, peak RSS of the stage's process)"
        )
    if contexts:
        print("\n| model.context | W | " + " | ".join(STAGES) + " | total |")
        print("|---:|---:|" + "---:|" * (len(STAGES) + 1))
        for r in contexts:
            print(stage_row([str(r["k"]), f"{r['V'] ** r['k']:,}×{r['V']}"], r))
        print(
            "\n(names.txt, default params (200 steps); "
            "stage cells: wall time, peak RSS of the stage's process)"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", type=Path, default=ROOT.parent / "shared/data/names.txt")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default="100000,1000000", help="synthetic list sizes (section 3)")
    ap.add_argument(
        "--vocab-sizes", default="27,300,1000,3000", help="vocabulary sizes V (section 4)"
    )
    ap.add_argument(
        "--contexts", default="1,2,3,4", help="model.context values k on names.txt (section 5)"
    )
    ap.add_argument(
        "--big-repeats",
        type=int,
        default=2,
        help="repeats for sizes above --dvc-max, for V ≥ 1000 and for model.context ≥ 3",
    )
    ap.add_argument(
        "--dvc-max",
        type=int,
        default=1_000_000,
        help="largest size that also gets a cold dvc repro",
    )
    ap.add_argument(
        "--stage-timeout",
        type=int,
        default=900,
        help="seconds before a section-4 or -5 stage is killed",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="1 repeat (2 for DVC against its floor), 100k names, V up to 300, contexts 1-2",
    )
    ap.add_argument(
        "--skip",
        default="",
        help="comma list of sections to skip: training,dvc,scaling,vocab,context,sweep,"
        "sampling,tests",
    )
    a = ap.parse_args()
    dvc_repeats = a.repeats
    if a.quick:
        a.repeats, a.big_repeats, dvc_repeats = 1, 1, 2
        a.sizes = "100000"
        a.vocab_sizes = ",".join(v for v in a.vocab_sizes.split(",") if int(v) <= 300)
        a.contexts = "1,2"
    names_path = a.names.resolve()
    skip = set(filter(None, a.skip.split(",")))
    global COMMIT
    COMMIT = sh("git", "rev-parse", "HEAD", cwd=ROOT).strip()
    STAGES.update(yaml.safe_load(sh("git", "show", f"{COMMIT}:dvc.yaml", cwd=ROOT))["stages"])
    machine_line = machine()
    tr = None if "training" in skip else bench_training(names_path, a.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        ENV["DVC_SITE_CACHE_DIR"] = str(tmp / "dvc-site")  # DVC's per-repo state, removed too
        dv = None if "dvc" in skip else bench_dvc(tmp, names_path, dvc_repeats)
        sizes = (
            []
            if "scaling" in skip
            else [
                bench_size(
                    tmp, n, names_path, a.repeats if n <= a.dvc_max else a.big_repeats, a.dvc_max
                )
                for n in sorted(int(s) for s in a.sizes.split(","))
            ]
        )
        vocabs = (
            []
            if "vocab" in skip
            else [
                bench_vocab(tmp, V, a.repeats if V < 1000 else a.big_repeats, a.stage_timeout)
                for V in sorted(int(v) for v in a.vocab_sizes.split(","))
            ]
        )
        contexts = (
            []
            if "context" in skip
            else [
                bench_context(
                    tmp, k, names_path, a.big_repeats if k >= 3 else a.repeats, a.stage_timeout
                )
                for k in sorted(int(k) for k in a.contexts.split(","))
            ]
        )
    summary(machine_line, tr, dv, sizes, vocabs, contexts)
    print()
    print(bench_workflow.run(names_path, 1 if a.quick else 3, skip, COMMIT))


if __name__ == "__main__":
    main()
