"""Benchmark of the pipeline; prints medians of --repeats runs and a Markdown table.

1. training: the notebook's one-hot loop (tests/notebook.py) against the train stage's
   `bigram.training.fit` on the train split's V×V counts, 200 steps on names.txt: median time
   of each (fit timed with torch already imported), their ratio and max |ΔW| of the final W.
2. DVC on names.txt, in temporary git clones of the committed HEAD (data.names set to the
   absolute path of names.txt and committed): cold `dvc repro` (a fresh clone per repeat,
   so neither the DVC cache nor its run-cache exists), a no-op `dvc repro`, and
   `dvc exp run -S train.lr=10` (between repeats the clone is reset to the baseline and its
   run-cache and experiments are removed, so every repeat really trains).
3. scaling: synthetic names lists (sampled with a fixed seed from the count-based bigram
   model of names.txt), each run through the six stages in a clone, one
   `python -m stages.<name>` process per stage: wall time and peak RSS (rusage of the
   process) of each, and a cold `dvc repro` for sizes up to --dvc-max names.

Run from the project root with the project's venv active:

    python scripts/bench.py                    # --sizes 100000,1000000,10000000 --repeats 5
    python scripts/bench.py --quick            # 1 repeat, 100k names only (under a minute)

Everything is written to a temporary directory that is removed at the end.
"""

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bigram.names import encode, parse_names  # noqa: E402
from bigram.params import TrainParams  # noqa: E402
from bigram.splitting import split_counts, split_pairs  # noqa: E402

STAGES = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])  # in pipeline order
DOWNSTREAM = ["train", "evaluate", "compare", "sample"]
BIN = os.path.dirname(sys.executable)  # the venv's bin, not resolved: dvc.yaml's `python`
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
    "DVC_NO_ANALYTICS": "1",
}
MiB = 1024
COMMIT = None  # the HEAD measured, fixed at start: commits made meanwhile do not leak in


def median(xs):
    return statistics.median(xs)


def fmt_s(t):
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


# --- helpers -----------------------------------------------------------------


def sh(*args, cwd):
    r = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(map(str, args))} failed in {cwd}:\n{r.stdout}{r.stderr}")
    return r.stdout + r.stderr


def timed_dvc(cwd, *args):
    t = time.perf_counter()
    out = sh(os.path.join(BIN, "dvc"), *args, cwd=cwd)
    return time.perf_counter() - t, out


def ran(output):
    if "is cached" in output:
        sys.exit(f"DVC restored a stage from its run-cache; the timing would be wrong:\n{output}")
    return re.findall(r"Running stage '(\w+)'", output)


def clone(dst, names):
    """A git clone of the project at COMMIT with data.names = names, committed."""
    sh("git", "clone", "-q", str(ROOT), str(dst), cwd="/")
    sh("git", "reset", "-q", "--hard", COMMIT, cwd=dst)
    for key, value in (
        ("user.name", "bench"),
        ("user.email", "bench@example.com"),
        ("commit.gpgsign", "false"),
    ):
        sh("git", "config", key, value, cwd=dst)
    params = dst / "params.yaml"
    text, n = re.subn(
        r"(?m)^(  names:\s*)\S+", lambda m: m.group(1) + str(names), params.read_text(), count=1
    )
    assert n == 1, "data.names not found in params.yaml"
    params.write_text(text)
    sh("git", "commit", "-qam", "bench: data.names", cwd=dst)
    return dst


# A stage is forked by this small launcher, not by the benchmark: a child's ru_maxrss
# counts the memory of the process it was forked from until its exec (Linux), and the
# benchmark holds torch and the notebook's tensors. The launcher adds ~10 MiB at most.
LAUNCHER = """
import os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1), os.dup2(fd, 2)
    os.execv(sys.executable, [sys.executable, "-m", "stages." + sys.argv[1]])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - t, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_stage(cwd, name):
    """Wall seconds and peak RSS (MiB) of one `python -m stages.<name>` process."""
    log = cwd / f".bench-{name}.log"
    out = sh(sys.executable, "-c", LAUNCHER, name, str(log), cwd=cwd)
    wall, maxrss, code = out.split()
    if int(code):
        sys.exit(f"stage {name} failed:\n{log.read_text()}")
    return float(wall), int(maxrss) / MiB  # ru_maxrss is KiB on Linux


def cold_repro(tmp, names, repeats, tag):
    """Median wall time of `dvc repro` in a fresh clone (empty cache and run-cache) per repeat."""
    times = []
    for i in range(repeats):
        d = clone(tmp / f"{tag}-cold{i}", names)
        t, out = timed_dvc(d, "repro")
        assert ran(out) == STAGES, out
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
    head = COMMIT[:7]
    dirty = sh("git", "status", "--porcelain", "--", "stages", cwd=ROOT).split()[1::2]
    print(
        f"machine: {cpu}, {os.cpu_count()} cores, {mem:.1f} GiB RAM; "
        f"python {platform.python_version()}, {versions}; "
        f"load average {open('/proc/loadavg').read().split()[0]} at start"
    )
    print(
        f"project: HEAD {head} (sections 2-3 measure HEAD; section 1 imports the working tree"
        + (f", uncommitted changes in {' '.join(dirty)})" if dirty else ", clean)")
    )


# --- 1. the notebook's loop vs fit -------------------------------------------


def bench_training(names_path, repeats, steps=200):
    import torch  # imported before timing: fit is timed without torch's import

    from bigram.training import fit
    from tests import notebook

    # The train stage's input: the train split's counts, built as prepare and split build them.
    vocab, pairs = encode(parse_names(names_path.read_bytes(), str(names_path)))
    assign = split_pairs(pairs, 42, 0.8, 0.1, "pairs")
    counts = split_counts(pairs, assign, len(vocab))[0]
    t = time.perf_counter()
    train = TrainParams(seed=42, lr=50.0, reg=0.01, steps=steps, checkpoint_every=50)
    fit(counts, train)  # the first call pays torch's lazy set-up
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
    print(
        f"notebook one-hot loop  {fmt_s(r['nb'])}   (runs: {', '.join(fmt_s(t) for t in nb_times)})"
    )
    print(
        f"training.fit           {fmt_s(r['fit'])}   "
        f"(runs: {', '.join(fmt_s(t) for t in fit_times)}; "
        f"first call, not in the median: {fmt_s(first)})"
    )
    print(f"ratio {r['ratio']:.0f}x, max |dW| = {dW:.2e}")
    return r


# --- 2. DVC on names.txt -----------------------------------------------------


def bench_dvc(tmp, names_path, repeats):
    r = {}
    r["cold"], d = cold_repro(tmp, names_path, repeats, "real")
    sh("git", "add", "-A", cwd=d)
    sh("git", "commit", "-qm", "bench: baseline run", cwd=d)
    noop = []
    for _ in range(repeats):
        t, out = timed_dvc(d, "repro")
        assert ran(out) == [], out
        noop.append(t)
    exp = []
    for _ in range(repeats):
        t, out = timed_dvc(d, "exp", "run", "-S", "train.lr=10")
        assert ran(out) == DOWNSTREAM, out
        exp.append(t)
        # Back to the baseline, with no run-cache entry or experiment left from this run.
        sh("git", "reset", "-q", "--hard", cwd=d)
        sh(os.path.join(BIN, "dvc"), "checkout", "-q", "--force", cwd=d)
        sh(os.path.join(BIN, "dvc"), "exp", "remove", "-q", "-A", cwd=d)
        shutil.rmtree(d / ".dvc/cache/runs", ignore_errors=True)
    r["noop"], r["exp"] = median(noop), median(exp)
    shutil.rmtree(d)
    print(f"\n## 2. DVC on {names_path.name} (clone of HEAD, medians of {repeats})")
    print(
        f"cold dvc repro {fmt_s(r['cold'])}, no-op dvc repro {fmt_s(r['noop'])} "
        f"(runs: {', '.join(fmt_s(t) for t in noop)}), "
        f"dvc exp run -S train.lr=10 {fmt_s(r['exp'])} (runs: {', '.join(fmt_s(t) for t in exp)})"
    )
    return r


# --- 3. scaling on synthetic names -------------------------------------------


def synth_names(path, n, names_path, seed=0, chunk=1_000_000, max_len=63):
    """Write n names drawn from the count-based bigram model of names_path; every name of
    a chunk advances one character per numpy step (names are cut at max_len characters)."""
    vocab, pairs = encode(parse_names(names_path.read_bytes(), str(names_path)))
    V = len(vocab)
    counts = np.bincount(pairs[0].astype(np.int64) * V + pairs[1], minlength=V * V).reshape(V, V)
    cdf = np.cumsum(counts / counts.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    flat = (
        cdf + np.arange(V)[:, None]
    ).ravel()  # row i shifted by i: one searchsorted for all rows
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


def bench_size(tmp, n, names_path, repeats, dvc_max):
    path = tmp / f"names-{n}.txt"
    t = time.perf_counter()
    synth_names(path, n, names_path)
    gen = time.perf_counter() - t
    d = clone(tmp / f"stages-{n}", path)
    runs = {s: [] for s in STAGES}
    for _ in range(repeats):
        for s in STAGES:
            runs[s].append(run_stage(d, s))
    shutil.rmtree(d)
    r = {
        "n": n,
        "gen": gen,
        "mb": path.stat().st_size / 1e6,
        "time": {s: median(w for w, _ in runs[s]) for s in STAGES},
        "rss": {s: max(m for _, m in runs[s]) for s in STAGES},
        "total": median(sum(runs[s][i][0] for s in STAGES) for i in range(repeats)),
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


# --- summary -----------------------------------------------------------------


def check(ok):
    return "met" if ok else "**missed**"


def summary(tr, dv, sizes):
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
        rows += [
            ("cold `dvc repro`, names.txt", fmt_s(dv["cold"]), "", ""),
            ("no-op `dvc repro`", fmt_s(dv["noop"]), "≤ 1.3 s", check(dv["noop"] <= 1.3)),
            ("`dvc exp run -S train.lr=10`", fmt_s(dv["exp"]), "≤ 5 s", check(dv["exp"] <= 5)),
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
    print("\n## Summary\n\n| measurement | median | target | |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if sizes:
        print("\n| names | " + " | ".join(STAGES) + " | total | cold `dvc repro` |")
        print("|---:|" + "---:|" * (len(STAGES) + 2))
        for r in sizes:
            cells = [f"{fmt_s(r['time'][s])}, {r['rss'][s]:.0f} MiB" for s in STAGES]
            repro = fmt_s(r["repro"]) if r["repro"] is not None else "–"
            print(f"| {r['n']:,} | " + " | ".join(cells) + f" | {fmt_s(r['total'])} | {repro} |")
        print("\n(stage cells: wall time, peak RSS of the stage's process)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", type=Path, default=ROOT.parent / "shared/data/names.txt")
    ap.add_argument("--sizes", default="100000,1000000,10000000", help="synthetic list sizes")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--big-repeats", type=int, default=2, help="repeats for sizes above --dvc-max")
    ap.add_argument(
        "--dvc-max",
        type=int,
        default=1_000_000,
        help="largest size that also gets a cold dvc repro",
    )
    ap.add_argument("--quick", action="store_true", help="1 repeat, 100k names only")
    ap.add_argument(
        "--skip", default="", help="comma list of sections to skip: training,dvc,scaling"
    )
    a = ap.parse_args()
    if a.quick:
        a.repeats, a.big_repeats, a.sizes = 1, 1, "100000"
    names_path = a.names.resolve()
    skip = set(filter(None, a.skip.split(",")))
    global COMMIT
    COMMIT = sh("git", "rev-parse", "HEAD", cwd=ROOT).strip()
    machine()
    tr = None if "training" in skip else bench_training(names_path, a.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        dv = None if "dvc" in skip else bench_dvc(tmp, names_path, a.repeats)
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
    summary(tr, dv, sizes)


if __name__ == "__main__":
    main()
