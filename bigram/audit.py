"""The audit: show a checkpoint's lineage, or verify it against the project.

    bigram lineage models/model.safetensors            # the chain, readable
    bigram lineage --json models/model.safetensors     # the same, for tools
    bigram lineage --verify models/model.safetensors   # recompute and compare
    bigram lineage --verify --rev exp-name models/model.safetensors

--verify checks every recorded digest against the files and against dvc.lock,
the recorded params against params.yaml and dvc.lock, the code's git commit,
and re-runs training in memory to confirm W bit for bit. Exit 0 when all
agree; otherwise one line per disagreement and exit 1. A check that cannot be
made (an object missing from the local DVC cache) is never skipped silently: it
gets a line saying what would bring it, and the exit is 2.
"""

import io
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from bigram import artifacts, fsio, params
from bigram.console import PipelineError
from bigram.context import MAX_WEIGHTS
from bigram.lineage import git, train_code
from bigram.training import check_budget, fit

# The largest file the audit reads whole: counts.npy of the largest W.
READ_LIMIT = 3 * 8 * MAX_WEIGHTS + 2**20


class Source:
    """Files as they are in the workspace (rev None) or at a git revision or
    DVC experiment (read through DVC's API, from git and the DVC cache)."""

    def __init__(self, rev: str | None = None) -> None:
        self.rev = rev
        self.commit, self.is_experiment = (
            _resolve(rev) if rev else (git("rev-parse", "HEAD"), False)
        )
        self.label = f"at {rev}" if rev else "in the workspace"
        self._digests: dict[str, dict[str, str] | str] = {}

    def uncached(self, path: str) -> bool:
        """Tracked by DVC at this revision, but not in the local cache (so not a disagreement:
        a check that cannot be made until `dvc pull`)."""
        return self.rev is not None and "not in the local DVC cache" in self.why_missing(path)

    def why_missing(self, path: str) -> str:
        """Why `path` could not be read: absent there, or only missing from the local cache."""
        if self.rev is None:
            return (
                f"{path}: not found in the workspace; if it is a DVC output, "
                "`dvc checkout` or `dvc pull` restores it"
            )
        in_git = git("cat-file", "-e", f"{self.commit}:{path}") is not None
        lock = _lock_stages(self.yaml("dvc.lock")) or {}
        tracked = any(
            path == o["path"] or path.startswith(str(o["path"]).rstrip("/") + "/")
            for entry in lock.values()
            for o in entry["outs"]
        )
        if in_git or not tracked:
            return f"{path}: not found at {self.rev} (no such file at that revision)"
        fetch = f"`dvc exp pull <remote> {self.rev}`" if self.is_experiment else "`dvc pull`"
        return (
            f"{path}: tracked by DVC at {self.rev}, but not in the local DVC cache; "
            f"{fetch} brings it"
        )

    def refusal(self, path: str) -> str | None:
        """Why the audit will not read `path`, a path a checkpoint names (None if it
        will): only files inside the project (data.names is one, params.yaml insists)."""
        if not isinstance(path, str) or "\0" in path:
            return "not a path"
        if params.outside_project(path):
            return "outside the project"
        if self.rev is None:
            root, real = Path.cwd().resolve(), Path(os.path.realpath(path))
            if real != root and root not in real.parents:
                return "outside the project (through a symbolic link)"
        return None

    def outside(self, path: str) -> bool:
        """A file outside the repository: read as it is now, whatever the revision."""
        return params.outside_project(path)

    def read(self, path: str, limit: int = READ_LIMIT) -> bytes | None:
        """The file's bytes, or None if it does not exist there or may not be read."""
        if self.refusal(path):
            return None
        try:
            if self.rev is None or self.outside(path):
                return fsio.read_bounded(path, limit, "")
            import dvc.api

            with dvc.api.open(path, rev=self.commit, mode="rb") as f:
                data = f.read(limit + 1)
            return data if len(data) <= limit else None
        except Exception:  # missing, not a file, over the limit, not in the cache: not read
            return None

    def digest(self, path: str, algorithm: str = "md5") -> str:
        """The file's md5 or sha256, or why there is none ("missing", "not read: ...")."""
        if path not in self._digests:
            self._digests[path] = self._both(path)
        found = self._digests[path]
        return found if isinstance(found, str) else found[algorithm]

    def _both(self, path: str) -> dict[str, str] | str:
        refused = self.refusal(path)
        if refused:
            return f"not read: {refused}"
        if self.rev is None or self.outside(path):
            if not os.path.lexists(path):
                return "missing"
            try:
                data = fsio.read_bounded(path, READ_LIMIT, "")
            except PipelineError as e:  # a FIFO, a device, too large: said, never read
                return f"not read: {str(e).split('; ')[0]}"
        else:
            data = self.read(path)
            if data is None:
                return "missing"
        return {"md5": artifacts.md5_bytes(data), "sha256": artifacts.sha256_bytes(data)}

    def yaml(self, path: str) -> object:
        data = self.read(path)
        try:
            return params.parse_yaml(data, path) if data is not None else None
        except PipelineError:  # a broken file is reported as the disagreements it causes
            return None

    def code_changed_since(self, commit: str) -> list[str] | None:
        """Code paths that differ between `commit` and this source, or None if unknown."""
        if git("cat-file", "-e", f"{commit}^{{commit}}") is None:
            return None
        revs = [commit] if self.rev is None else [commit, self.commit]
        return git("diff", "--name-only", *revs, "--", *train_code()).split()


def _resolve(rev: str) -> tuple[str, bool]:
    """The commit of a git revision or DVC experiment, and whether it is an experiment."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    if sha:
        return sha, False
    try:
        from dvc.repo import Repo
        from dvc.repo.experiments.utils import resolve_name

        with Repo() as repo:
            ref = resolve_name(repo.scm, rev).get(rev)
            if ref is not None:
                return repo.scm.get_ref(str(ref)), True
    except Exception:
        pass
    raise PipelineError(
        f"--rev {rev}: no such git revision or DVC experiment (see `git log` and `dvc exp list`)"
    )


def _flatten(nested: object) -> dict:
    """{"train.lr": 50, ...} from {"train": {"lr": 50}} or dvc.lock's {"train.lr": 50};
    {} from anything that is not a mapping (a broken file is reported as mismatches)."""
    out = {}
    for key, value in nested.items() if isinstance(nested, dict) else ():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _dir_manifest(md5: str) -> dict | None:
    """{relpath: md5} of a directory out recorded in dvc.lock, read from the DVC cache
    wherever `cache.dir` puts it; None if the local cache does not have it."""
    try:
        from dvc.repo import Repo

        with Repo(".") as repo:
            entry = Path(repo.cache.local.oid_to_path(md5))
        return {e["relpath"]: e["md5"] for e in json.loads(entry.read_text())}
    except Exception:  # no DVC repo, no such object, a broken manifest: not available
        return None


def _lock_stages(lock: object) -> dict | None:
    """{stage: {"params": {...}, "deps": [...], "outs": [...]}} from a parsed dvc.lock,
    or None if it is not one."""
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        return None

    def items(entry: object, kind: str) -> list[dict]:
        found = entry.get(kind) if isinstance(entry, dict) else None
        return (
            [i for i in found if isinstance(i, dict) and "path" in i]
            if isinstance(found, list)
            else []
        )

    return {
        name: {
            "params": (entry.get("params") or {}).get("params.yaml")
            if isinstance(entry, dict) and isinstance(entry.get("params"), dict)
            else None,
            "deps": items(entry, "deps"),
            "outs": items(entry, "outs"),
        }
        for name, entry in stages.items()
    }


def _locked_files(stages: dict) -> tuple[list[tuple[str, str, str | None]], list[str]]:
    """[(stage, path, md5)] of what dvc.lock says each stage produced (files inside
    directory outs too, from the directory's manifest), and of the external inputs
    no stage produces, such as the names file; and the directories whose manifest
    is not in the local DVC cache, so whose files could not be listed."""
    out, unlisted = [], []
    for stage, entry in stages.items():
        for item in entry["outs"]:
            md5 = item.get("md5")
            out.append((stage, item["path"], md5))
            if isinstance(md5, str) and md5.endswith(".dir"):
                manifest = _dir_manifest(md5)
                if manifest is None:
                    unlisted.append(f"dvc.lock ({stage}) {item['path']}")
                for rel, file_md5 in (manifest or {}).items():
                    out.append((stage, f"{item['path']}/{rel}", file_md5))
    produced = {path for _, path, _ in out}
    for stage, entry in stages.items():
        for item in entry["deps"]:
            path = str(item["path"])
            if path not in produced and not path.startswith(("stages/", "bigram/")):
                out.append((stage, path, item.get("md5")))
    return out, unlisted


class Audit:
    """The checks of one checkpoint against one source, and what disagreed."""

    def __init__(self, path: str, data: bytes, W: np.ndarray, meta: dict, src: Source) -> None:
        self.path, self.data, self.W, self.meta, self.src = path, data, W, meta, src
        self.problems: list[str] = []
        self.not_made: list[str] = []
        self.checks = 0
        self.lock = _lock_stages(src.yaml("dvc.lock"))
        self.locked, unlisted = _locked_files(self.lock or {})
        fetch = "`dvc exp pull <remote> " + src.rev + "`" if src.is_experiment else "`dvc pull`"
        self.not_made += [
            f"not checked: {what}: the md5 of each file inside is in the directory's manifest, "
            f"which is not in the local DVC cache; {fetch} brings it"
            for what in unlisted
        ]

    def expect(self, what: str, recorded: object, found: object) -> None:
        self.checks += 1
        if recorded != found:
            self.problems.append(f"{what}: recorded {recorded!r}, found {found!r}")

    def run(self) -> None:
        if self.lock is None:
            self.problems.append(
                f"dvc.lock: missing or not a DVC lock file {self.src.label}; run `dvc repro`"
            )
        self.check_params_and_files()
        self.check_own_file()
        self.check_previous()
        self.check_code()
        self.check_retrained()

    def check_params_and_files(self) -> None:
        current = _flatten(self.src.yaml(params.PARAMS_FILE))
        recorded_files: dict[str, str] = {}
        recorded_sha256: dict[str, str] = {}
        for stage in self.meta["lineage"]:
            name = stage["stage"]
            entry = (self.lock or {}).get(name)
            if self.lock is not None and entry is None:
                self.problems.append(f"dvc.lock: no {name} stage; run `dvc repro`")
            locked_params = _flatten(entry["params"]) if entry else {}
            for key, value in _flatten(stage["params"]).items():
                self.expect(f"params.yaml {key}", value, current.get(key, "missing"))
                if entry is not None:
                    self.expect(
                        f"dvc.lock {name} param {key}", value, locked_params.get(key, "missing")
                    )
            for file, digest in {**stage["inputs"], **stage["outputs"]}.items():
                recorded_files.setdefault(file, digest)  # an output is the next stage's input
            for file, digest in stage["sha256"].items():
                recorded_sha256.setdefault(file, digest)
        for file, digest in recorded_files.items():
            if self.src.digest(file) == "missing" and self.src.uncached(file):
                self.not_made.append(f"not checked: {self.src.why_missing(file)}")
                continue
            # One check per file, of both digests; a file whose md5 agrees but whose
            # sha256 does not has been forged to collide.
            if self.src.digest(file) != digest:
                self.expect(f"{file} md5", digest, self.src.digest(file))
            else:
                self.expect(
                    f"{file} sha256", recorded_sha256[file], self.src.digest(file, "sha256")
                )
            for lock_stage, lock_path, lock_md5 in self.locked:
                if lock_path == file:
                    self.expect(f"dvc.lock {lock_stage} {file} md5", digest, lock_md5)

    def check_own_file(self) -> None:
        """The checkpoint file itself: where the run put it, and what dvc.lock says it is."""
        own = artifacts.md5_bytes(self.data)
        steps = self.meta["lineage"][-1]["params"]["train"]["steps"]
        homes = [artifacts.checkpoint_path(self.meta["step"])]
        if self.meta["step"] == steps:
            homes.append(artifacts.MODEL)
        for home in homes:
            self.checks += 1
            found = self.src.digest(home)
            if found != own:
                self.problems.append(
                    f"{self.path}: md5 {own}, but {home} {self.src.label} has md5 {found}"
                )
            for lock_stage, lock_path, lock_md5 in self.locked:
                if lock_path == home:
                    self.checks += 1
                    if lock_md5 != own:
                        self.problems.append(
                            f"{self.path}: md5 {own}, but dvc.lock "
                            f"({lock_stage}) records {lock_md5} for {home}"
                        )

    def check_previous(self) -> None:
        prev = self.meta["previous"]
        if prev:
            found = self.src.digest(prev["path"])
            algorithm = "md5" if found != prev["md5"] else "sha256"
            self.expect(
                f"previous checkpoint {prev['path']} {algorithm}",
                prev[algorithm],
                self.src.digest(prev["path"], algorithm),
            )

    def check_code(self) -> None:
        code = self.meta["code"]
        self.checks += 1
        if code["commit"] is None:
            why = code.get("reason", "trained outside a git repository")
            self.problems.append(f"code: no git commit recorded ({why})")
        elif code["dirty"] is not False:
            self.problems.append(
                f"code: trained from uncommitted changes on top of "
                f"{code['commit'][:12]} (in {', '.join(train_code())}); "
                "commit them and run `dvc repro -f train`"
            )
        else:
            changed = self.src.code_changed_since(code["commit"])
            if changed is None:
                self.problems.append(
                    f"code: recorded commit {code['commit'][:12]} is not in this repository"
                )
            elif changed:
                self.problems.append(
                    f"code: {', '.join(changed)} changed since the recorded "
                    f"commit {code['commit'][:12]}; run `dvc repro`"
                )

    def check_retrained(self) -> None:
        """Re-run training in memory from the recorded counts and params."""
        recorded_counts = self.meta["lineage"][-1]["inputs"].get(artifacts.COUNTS)
        counts_data = self.src.read(artifacts.COUNTS)
        if counts_data is None or artifacts.md5_bytes(counts_data) != recorded_counts:
            return  # already reported as an md5 disagreement
        train = params.section("train", self.meta["lineage"][-1]["params"]["train"], self.path)
        rows, V = self.W.shape  # checked against the vocabulary and recorded context
        source = f"{artifacts.COUNTS} {self.src.label}"
        counts = artifacts.load_npy(io.BytesIO(counts_data), len(counts_data), source)
        artifacts.check_counts(counts, V, rows, source)
        again = replace(train, steps=self.meta["step"])
        check_budget((rows, V), again, self.path)
        W_again, curve = fit(counts[0], again)
        self.checks += 1
        if W_again.tobytes() != self.W.tobytes():
            self.problems.append(
                f"{self.path}: W differs from retraining the recorded inputs "
                f"and params (max |dW| = "
                f"{float(np.abs(W_again - self.W).max()):.3g})"
            )
        self.expect(
            f"{self.path} loss at step {self.meta['step']} (retrained)",
            self.meta["loss"],
            float(curve[-1, 0]),
        )


def describe(path: str, data: bytes, meta: dict) -> str:
    """The chain from the names file to the checkpoint, for a person."""
    lines = [
        f"checkpoint {path}  md5 {artifacts.md5_bytes(data)}",
        f"  step {meta['step']}, loss {meta['loss']:.6f} "
        f"(ce {meta['ce']:.6f} + reg {meta['reg']:.6f}), vocabulary of {len(meta['vocab'])}",
    ]
    if meta["previous"]:
        lines.append(f"  previous {meta['previous']['path']}  md5 {meta['previous']['md5']}")
    code = meta["code"]
    state = (
        "no git"
        if code["commit"] is None
        else f"git {code['commit'][:12]} ({'DIRTY' if code['dirty'] else 'clean'})"
    )
    lines.append(f"  code {state}; " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    for stage in meta["lineage"]:
        shown = " ".join(f"{k}={v}" for k, v in _flatten(stage["params"]).items())
        lines.append(f"{stage['stage']:8s} {shown}")
        for kind in ("inputs", "outputs"):
            for file, digest in stage[kind].items():
                lines.append(f"    {'in ' if kind == 'inputs' else 'out'}  {file:32s} md5 {digest}")
    lines.append(f"train    -> {path}")
    return "\n".join(lines)


def lineage_command(
    checkpoint: str, verify: bool, as_json: bool, rev: str | None, provenance: bool = False
) -> int:
    """The `lineage` subcommand; returns the exit code."""
    src = Source(rev)
    if rev is None or src.outside(checkpoint):
        # The user named this file: read it wherever it is, but only a bounded regular file.
        if not os.path.lexists(checkpoint):
            raise PipelineError(src.why_missing(checkpoint))
        data = fsio.read_bounded(checkpoint, artifacts.CHECKPOINT_LIMIT, "name a checkpoint file")
    else:
        data = src.read(checkpoint, artifacts.CHECKPOINT_LIMIT)
    if data is None:
        raise PipelineError(src.why_missing(checkpoint))
    W, meta = artifacts.parse_checkpoint(data, checkpoint)
    if provenance:  # the statement is JSON whether or not --json was given
        from bigram import provenance as slsa

        statement = slsa.statement(checkpoint, data, meta, slsa.repo_uri())
        print(json.dumps(statement, indent=2, sort_keys=True, allow_nan=False))
        return 0
    if not verify:
        print(
            json.dumps(
                {"path": checkpoint, "md5": artifacts.md5_bytes(data), **meta},
                indent=2,
                sort_keys=True,
            )
            if as_json
            else describe(checkpoint, data, meta)
        )
        return 0
    if not Path("dvc.yaml").is_file():
        raise PipelineError(
            "--verify compares with the project: run it from the project root, where dvc.yaml is"
        )
    audit = Audit(checkpoint, data, W, meta, src)
    audit.run()
    if as_json:
        report = {
            "path": checkpoint,
            "ok": not audit.problems and not audit.not_made,
            "checks": audit.checks,
            "problems": audit.problems,
            "not_checked": audit.not_made,
        }
        print(json.dumps(report, indent=2))
    else:
        for line in audit.problems + audit.not_made:
            print(line)
        if not audit.problems:
            incomplete = f"; {len(audit.not_made)} could not be made" if audit.not_made else ""
            print(
                f"verified {checkpoint} {src.label}: {audit.checks} checks agree{incomplete}, "
                "retrained W is bit-identical"
            )
    # 1: something disagrees; 2: nothing disagrees, but not every check could be made.
    return 1 if audit.problems else 2 if audit.not_made else 0
