"""Lineage of every checkpoint, and the audit command.

Each stage records what it consumed and produced (params and md5 digests, the
same digests dvc.lock uses) and passes the chain on: prepare and split write it
to data/*/lineage.json, train stores the whole chain inside every checkpoint.

    python -m stages.lineage models/model.safetensors            # the chain, readable
    python -m stages.lineage --json models/model.safetensors     # the same, for tools
    python -m stages.lineage --verify models/model.safetensors   # recompute and compare
    python -m stages.lineage --verify --rev exp-name models/model.safetensors

--verify checks every recorded digest against the files and against dvc.lock,
the recorded params against params.yaml and dvc.lock, the code's git commit,
and re-runs training in memory to confirm W bit for bit. Exit 0 when all
agree; otherwise one line per disagreement and exit 1.
"""
import argparse
import io
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

from stages import artifacts
from stages.cli import PipelineError, run
from stages.params import PARAMS_FILE, load_yaml

# The code a checkpoint depends on: the train stage's code deps in dvc.yaml (a
# test keeps them equal), so a change here is also what makes DVC retrain. The
# inputs' code is covered by their digests.
CODE_PATHS = ("stages/train.py", "stages/lineage.py", "stages/artifacts.py", "stages/core.py",
              "stages/params.py", "stages/cli.py")


# --- recording (used by the stages) -----------------------------------------

def record(stage, params, inputs, outputs):
    return {"stage": stage, "params": params,
            "inputs": {p: artifacts.md5(p) for p in inputs},
            "outputs": {p: artifacts.md5(p) for p in outputs}}


def check_recorded(chain, paths, lineage_file):
    """Refuse inputs that are not the files the previous stage recorded."""
    if not (isinstance(chain, list) and chain and all(
            isinstance(r, dict) and isinstance(r.get("outputs"), dict) for r in chain)):
        raise PipelineError(f"{lineage_file} is not a lineage record; run `dvc repro` to rebuild it")
    recorded = {p: d for r in chain for p, d in r["outputs"].items()}
    for p in paths:
        if artifacts.md5(p) != recorded.get(p):
            raise PipelineError(f"{p} is not the file recorded in {lineage_file}; "
                                "run `dvc repro` to rebuild both")


def _git(*args):
    try:
        r = subprocess.run(["git", *args], capture_output=True, text=True)
    except OSError:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def code_identity():
    """The last commit that changed the code, and whether the tree has changes on
    top of it. Not HEAD: committing dvc.lock or a README after a run must not
    change what a rerun of the same code writes."""
    commit = _git("log", "-1", "--format=%H", "--", *CODE_PATHS)
    if not commit:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(_git("status", "--porcelain", "--", *CODE_PATHS))}


def versions():
    out = {"python": platform.python_version()}
    for package in ("torch", "numpy", "safetensors", "dvc"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


# --- where an audit reads from -----------------------------------------------

class Source:
    """Files as they are in the workspace (rev None) or at a git revision or
    DVC experiment (read through DVC's API, from git and the DVC cache)."""

    def __init__(self, rev=None):
        self.rev = rev
        self.commit = _resolve(rev) if rev else _git("rev-parse", "--verify", "HEAD")
        self.label = f"at {rev}" if rev else "in the workspace"

    def read(self, path):
        """The file's bytes, or None if it does not exist there."""
        outside = Path(path).is_absolute() or path.startswith("..")
        try:
            if self.rev is None or outside:
                return Path(path).read_bytes()
            import dvc.api
            return dvc.api.read(path, rev=self.commit, mode="rb")
        except Exception:  # missing file, rev without it, cache without it: all "not found"
            return None

    def yaml(self, path):
        data = self.read(path)
        try:
            return load_yaml(data) if data is not None else None
        except yaml.YAMLError:
            return None

    def code_changed_since(self, commit):
        """Code paths that differ between `commit` and this source, or None if unknown."""
        if _git("cat-file", "-e", f"{commit}^{{commit}}") is None:
            return None
        rng = [commit] if self.rev is None else [commit, self.commit]
        return _git("diff", "--name-only", *rng, "--", *CODE_PATHS).split()


def _resolve(rev):
    sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    if sha:
        return sha
    try:
        from dvc.repo import Repo
        from dvc.repo.experiments.utils import resolve_name
        with Repo() as repo:
            ref = resolve_name(repo.scm, rev).get(rev)
            if ref is not None:
                return repo.scm.get_ref(str(ref))
    except Exception:
        pass
    raise PipelineError(f"--rev {rev}: no such git revision or DVC experiment "
                        "(see `git log` and `dvc exp list`)")


# --- the audit ----------------------------------------------------------------

def _flatten(params):
    """{"train.lr": 50, ...} from {"train": {"lr": 50}} or dvc.lock's {"train.lr": 50};
    {} from anything that is not a mapping (a broken file is reported as mismatches)."""
    out = {}
    for key, value in (params.items() if isinstance(params, dict) else ()):
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _digest(data):
    return artifacts.md5_bytes(data) if data is not None else "missing"


def _dir_manifest(md5):
    """{relpath: md5} of a directory out recorded in dvc.lock, from the DVC cache."""
    if not md5 or not md5.endswith(".dir"):
        return {}
    entry = Path(".dvc/cache/files/md5") / md5[:2] / md5[2:]
    try:
        return {e["relpath"]: e["md5"] for e in json.loads(entry.read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _lock_stages(lock):
    """{stage: {"params": {...}, "deps": [...], "outs": [...]}} from a parsed dvc.lock,
    or None if it is not one."""
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        return None

    def items(entry, kind):
        found = entry.get(kind) if isinstance(entry, dict) else None
        return [i for i in found if isinstance(i, dict) and "path" in i] if isinstance(found, list) else []

    return {name: {"params": (entry.get("params") or {}).get("params.yaml")
                   if isinstance(entry, dict) and isinstance(entry.get("params"), dict) else None,
                   "deps": items(entry, "deps"), "outs": items(entry, "outs")}
            for name, entry in stages.items()}


def _locked_files(stages):
    """[(stage, path, md5)] of what dvc.lock says each stage produced (files inside
    directory outs too, when the DVC cache has the directory's manifest), and of
    the external inputs no stage produces, such as the names file."""
    out = []
    for stage, entry in stages.items():
        for item in entry["outs"]:
            out.append((stage, item["path"], item.get("md5")))
            for rel, md5 in _dir_manifest(item.get("md5")).items():
                out.append((stage, f"{item['path']}/{rel}", md5))
    produced = {path for _, path, _ in out}
    for stage, entry in stages.items():
        for item in entry["deps"]:
            if item["path"] not in produced and not str(item["path"]).startswith("stages/"):
                out.append((stage, item["path"], item.get("md5")))
    return out


def verify(path, data, W, meta, src):
    """Every disagreement between the checkpoint and `src`, one line each, and the
    number of checks made."""
    problems, checks = [], 0

    def compare(what, recorded, found):
        nonlocal checks
        checks += 1
        if recorded != found:
            problems.append(f"{what}: recorded {recorded!r}, found {found!r}")

    params = _flatten(src.yaml(PARAMS_FILE))
    lock = _lock_stages(src.yaml("dvc.lock"))
    if lock is None:
        problems.append(f"dvc.lock: missing or not a DVC lock file {src.label}; run `dvc repro`")
    locked = _locked_files(lock or {})
    recorded_files = {}
    for stage in meta["lineage"]:
        name = stage["stage"]
        entry = (lock or {}).get(name)
        if lock is not None and entry is None:
            problems.append(f"dvc.lock: no {name} stage; run `dvc repro`")
        locked_params = _flatten(entry["params"]) if entry else {}
        for key, value in _flatten(stage["params"]).items():
            compare(f"params.yaml {key}", value, params.get(key, "missing"))
            if entry is not None:
                compare(f"dvc.lock {name} param {key}", value, locked_params.get(key, "missing"))
        for file, digest in {**stage["inputs"], **stage["outputs"]}.items():
            recorded_files.setdefault(file, digest)  # one stage's output is the next one's input
    for file, digest in recorded_files.items():
        compare(f"{file} md5", digest, _digest(src.read(file)))
        for lock_stage, lock_path, lock_md5 in locked:
            if lock_path == file:
                compare(f"dvc.lock {lock_stage} {file} md5", digest, lock_md5)

    # The checkpoint file itself: where the run put it, and what dvc.lock says it is.
    own = artifacts.md5_bytes(data)
    steps = meta["lineage"][-1]["params"]["train"]["steps"]
    homes = [artifacts.checkpoint_path(meta["step"])]
    if meta["step"] == steps:
        homes.append(artifacts.MODEL)
    for home in homes:
        checks += 1
        found = _digest(src.read(home))
        if found != own:
            problems.append(f"{path}: md5 {own}, but {home} {src.label} has md5 {found}")
        for lock_stage, lock_path, lock_md5 in locked:
            if lock_path == home:
                checks += 1
                if lock_md5 != own:
                    problems.append(f"{path}: md5 {own}, but dvc.lock ({lock_stage}) records "
                                    f"{lock_md5} for {home}")
    if meta["previous"]:
        prev = meta["previous"]
        compare(f"previous checkpoint {prev['path']} md5", prev["md5"],
                _digest(src.read(prev["path"])))

    code = meta["code"]
    checks += 1
    if code["commit"] is None:
        problems.append("code: no git commit recorded (trained outside a git repository)")
    elif code["dirty"]:
        problems.append(f"code: trained from uncommitted changes on top of {code['commit'][:12]} "
                        f"(in {', '.join(CODE_PATHS)}); commit them and run `dvc repro -f train`")
    else:
        changed = src.code_changed_since(code["commit"])
        if changed is None:
            problems.append(f"code: recorded commit {code['commit'][:12]} is not in this repository")
        elif changed:
            problems.append(f"code: {', '.join(changed)} changed since the recorded commit "
                            f"{code['commit'][:12]}; run `dvc repro`")

    # Re-run training in memory from the recorded counts and params.
    counts_file = artifacts.COUNTS
    recorded_counts = meta["lineage"][-1]["inputs"].get(counts_file)
    counts_data = src.read(counts_file)
    if counts_data is not None and _digest(counts_data) == recorded_counts:
        from stages.train import fit
        t = meta["lineage"][-1]["params"]["train"]
        counts = np.load(io.BytesIO(counts_data), allow_pickle=False)
        W_again, curve, _ = fit(counts[0], t["seed"], t["lr"], t["reg"], meta["step"])
        checks += 1
        if W_again.tobytes() != W.tobytes():
            problems.append(f"{path}: W differs from retraining the recorded inputs and params "
                            f"(max |dW| = {float(np.abs(W_again - W).max()):.3g})")
        compare(f"{path} loss at step {meta['step']} (retrained)", meta["loss"], float(curve[-1, 0]))
    return problems, checks


def describe(path, data, meta):
    """The chain from the names file to the checkpoint, for a person."""
    lines = [f"checkpoint {path}  md5 {artifacts.md5_bytes(data)}",
             f"  step {meta['step']}, loss {meta['loss']:.6f} "
             f"(ce {meta['ce']:.6f} + reg {meta['reg']:.6f}), vocabulary of {len(meta['vocab'])}"]
    if meta["previous"]:
        lines.append(f"  previous {meta['previous']['path']}  md5 {meta['previous']['md5']}")
    code = meta["code"]
    state = "no git" if code["commit"] is None else \
        f"git {code['commit'][:12]} ({'DIRTY' if code['dirty'] else 'clean'})"
    lines.append(f"  code {state}; " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    for stage in meta["lineage"]:
        shown = " ".join(f"{k}={v}" for k, v in _flatten(stage["params"]).items())
        lines.append(f"{stage['stage']:8s} {shown}")
        for kind in ("inputs", "outputs"):
            for file, digest in stage[kind].items():
                lines.append(f"    {'in ' if kind == 'inputs' else 'out'}  {file:32s} md5 {digest}")
    lines.append(f"train    -> {path}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m stages.lineage", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint file, e.g. models/model.safetensors")
    parser.add_argument("--verify", action="store_true", help="recompute and compare everything")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--rev", help="audit the checkpoint as it was at this git revision or "
                                      "DVC experiment")
    args = parser.parse_args(argv)
    src = Source(args.rev)
    data = src.read(args.checkpoint)
    if data is None:
        raise PipelineError(f"{args.checkpoint}: not found {src.label}")
    W, meta = artifacts.parse_checkpoint(data, args.checkpoint)
    if not args.verify:
        print(json.dumps({"path": args.checkpoint, "md5": artifacts.md5_bytes(data), **meta},
                         indent=2, sort_keys=True) if args.json else describe(args.checkpoint, data, meta))
        return
    if not Path("dvc.yaml").is_file():
        raise PipelineError("--verify compares with the project: run it from the project root, "
                            "where dvc.yaml is")
    problems, checks = verify(args.checkpoint, data, W, meta, src)
    if args.json:
        print(json.dumps({"path": args.checkpoint, "ok": not problems, "checks": checks,
                          "problems": problems}, indent=2))
    elif problems:
        print("\n".join(problems))
    else:
        print(f"verified {args.checkpoint} {src.label}: {checks} checks agree, "
              f"retrained W is bit-identical")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    run(main)
