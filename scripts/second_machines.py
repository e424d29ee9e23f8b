"""Prove the same bytes on real second machines: Debian chroots, run as root (not in CI).

    sudo python scripts/second_machines.py [--machines bookworm-arm64,trixie-amd64]
        [--chroots /work/chroots] [--names ../shared/data/names.txt]

For each machine (built with debootstrap from Debian's registry if absent; arm64 runs under
qemu-user), with its own Debian Python and a new venv from requirements.txt (no torch):
1. a fresh clone of this repository's HEAD runs the README's run command (`dvc repro`), and
   `git status` must stay clean there: the committed dvc.lock reproduced byte for byte;
2. the pipeline on the names list (data.names), then with model.context 2, and the md5 of
   every artifact is compared with the same runs on this machine;
3. each side's checkpoint is verified on the other (`bigram lineage --verify`).
It prints one table per machine and exits non-zero if anything differs.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIRROR = "http://deb.debian.org/debian"
MACHINES = {  # name -> (Debian suite, architecture)
    "bookworm-arm64": ("bookworm", "arm64"),
    "trixie-amd64": ("trixie", "amd64"),
}
ARTIFACTS = ("data", "models", "metrics", "plots")
VENV = "/opt/bigram-venv"


def run(*args, cwd=None, env=None, check=True):
    print("+", " ".join(map(str, args)), flush=True)
    r = subprocess.run(list(map(str, args)), cwd=cwd, env=env, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise SystemExit(
            f"failed ({r.returncode}): {' '.join(map(str, args))}\n{r.stdout}\n{r.stderr}"
        )
    return r


def mounted(path):
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def build(chroot, suite, arch):
    """A Debian chroot with python3, venv, pip and git; proc and dev mounted."""
    if not (chroot / "usr/bin/python3").exists():
        run("apt-get", "install", "-y", "-qq", "debootstrap", "qemu-user-static", "binfmt-support")
        if arch == "arm64":  # qemu-user runs arm64 binaries through binfmt_misc
            if not mounted("/proc/sys/fs/binfmt_misc"):
                run("mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc")
            run("update-binfmts", "--enable", "qemu-aarch64", check=False)
        chroot.mkdir(parents=True, exist_ok=True)
        run("debootstrap", f"--arch={arch}", suite, chroot, MIRROR)
    shutil.copy("/etc/resolv.conf", chroot / "etc/resolv.conf")
    for sub, how in (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"])):
        if not mounted(chroot / sub):
            run("mount", *how, chroot / sub)
    if (
        not (chroot / "usr/bin/git").exists()
        or not (chroot / "usr/sbin/update-ca-certificates").exists()
    ):
        inside(
            chroot,
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            "python3 python3-venv python3-pip git ca-certificates",
        )
    # A TLS-intercepting proxy's CA (as on the project's machines) must be trusted inside,
    # or pip cannot reach PyPI there.
    local_cas = list(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if local_cas:
        (chroot / "usr/local/share/ca-certificates").mkdir(parents=True, exist_ok=True)
        for ca in local_cas:
            shutil.copy(ca, chroot / "usr/local/share/ca-certificates" / ca.name)
        inside(chroot, "update-ca-certificates >/dev/null")


CLEAN = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"]


def inside(chroot, script, cwd="/", check=True):
    """`script` run by bash in the chroot, with none of this machine's environment (its
    PIP_* settings name paths that are not there)."""
    return run(*CLEAN, "chroot", chroot, "/bin/bash", "-c", f"cd {cwd} && {script}", check=check)


def digests(project):
    """{relative path: md5} of every artifact and of dvc.lock."""
    out = {"dvc.lock": hashlib.md5((project / "dvc.lock").read_bytes()).hexdigest()}
    for top in ARTIFACTS:
        for p in sorted((project / top).rglob("*")):
            if p.is_file() and ".tmp" not in p.name:
                out[str(p.relative_to(project))] = hashlib.md5(p.read_bytes()).hexdigest()
    return out


PIPELINE = (
    "git config user.email m@m && git config user.name m && "
    "dvc config core.analytics false && "
    "dvc repro -q && git status --porcelain > ../status-committed.txt && "
    "cp ../names.txt data/names-full.txt && "
    "sed -i 's#names: data/names.txt#names: data/names-full.txt#' params.yaml && "
    "dvc repro -q && cp -r . ../run-names && "
    "sed -i 's#context: 1 #context: 2 #' params.yaml && dvc repro -q && cp -r . ../run-context2"
)


def side(workdir, names, activate):
    """The runs in `workdir` (a fresh clone lives in workdir/project)."""
    shutil.copy(names, workdir / "names.txt")
    return f"{activate} && cd {workdir}/project && {PIPELINE}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--machines", default=",".join(MACHINES))
    ap.add_argument("--chroots", type=Path, default=Path("/work/chroots"))
    ap.add_argument("--names", type=Path, default=ROOT.parent / "shared/data/names.txt")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it builds and enters chroots")
    head = run("git", "rev-parse", "HEAD", cwd=ROOT).stdout.strip()
    bad = 0

    # This machine, in a fresh clone with its own venv.
    here = Path(tempfile.mkdtemp(prefix="bigram-host-"))
    run("git", "clone", "-q", ROOT, here / "project")
    run("python3", "-m", "venv", here / "venv")
    run(here / "venv/bin/pip", "install", "-q", "-r", "requirements.txt", cwd=here / "project")
    run("bash", "-c", side(here, a.names, f". {here}/venv/bin/activate"))
    host = {k: digests(here / k) for k in ("run-names", "run-context2")}

    for name in a.machines.split(","):
        suite, arch = MACHINES[name]
        chroot = a.chroots / name
        build(chroot, suite, arch)
        work = chroot / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        run("git", "clone", "-q", "--no-local", ROOT, work / "project")
        inside(chroot, f"test -x {VENV}/bin/python || python3 -m venv {VENV}")
        inside(chroot, f"{VENV}/bin/pip install -q -r requirements.txt", cwd="/work/project")
        python = inside(
            chroot,
            f"{VENV}/bin/python -c 'import platform as p; print(p.python_version(), p.machine())'",
        ).stdout.strip()
        inside(chroot, side(work, a.names, f". {VENV}/bin/activate").replace(str(work), "/work"))
        status = (work / "status-committed.txt").read_text()
        theirs = {k: digests(work / k) for k in ("run-names", "run-context2")}
        print(f"\n## {name}: Debian {suite} {arch}, Python {python}, HEAD {head[:12]}")
        print(
            f"fresh clone, `dvc repro`: git status {'clean' if not status else 'DIRTY: ' + status}"
        )
        bad += bool(status)
        for run_name in ("run-names", "run-context2"):
            same = [p for p in host[run_name] if theirs[run_name].get(p) == host[run_name][p]]
            differ = sorted(
                set(host[run_name]) ^ set(theirs[run_name])
                | {p for p in host[run_name] if p in theirs[run_name] and p not in same}
            )
            print(f"{run_name}: {len(same)} files identical, {len(differ)} differ {differ[:5]}")
            for key in (
                "models/model.safetensors",
                "data/split/counts.npy",
                "metrics/evaluate.json",
            ):
                print(
                    f"    {key:28s} {theirs[run_name].get(key)}  (here {host[run_name].get(key)})"
                )
            bad += bool(differ)
        # Each side's checkpoint verified on the other: their run with this machine's code...
        there = Path(tempfile.mkdtemp(prefix=f"bigram-{name}-"))
        shutil.copytree(work / "run-context2", there / "project", symlinks=True)
        r = run(
            "bash",
            "-c",
            f". {here}/venv/bin/activate && cd {there}/project && "
            "python -m bigram lineage --verify models/model.safetensors",
            check=False,
        )
        print(
            f"made on {name}, verified here: exit {r.returncode}: "
            f"{r.stdout.strip().splitlines()[-1:]}"
        )
        bad += r.returncode != 0
        # ... and this machine's run with theirs.
        shutil.rmtree(work / "mine", ignore_errors=True)
        shutil.copytree(here / "run-context2", work / "mine", symlinks=True)
        r = inside(
            chroot,
            f". {VENV}/bin/activate && python -m bigram lineage --verify models/model.safetensors",
            cwd="/work/mine",
            check=False,
        )
        print(
            f"made here, verified on {name}: exit {r.returncode}: "
            f"{r.stdout.strip().splitlines()[-1:]}"
        )
        bad += r.returncode != 0
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
