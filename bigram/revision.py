"""Reading the project's files as they are in the workspace or at a git revision or DVC
experiment: the one place the API and the audit get files, code identities and commits.

The project may sit in a subfolder of its git repository (`dvc init --subdir`): paths
here are relative to the project's root (where dvc.yaml is), and the git prefix is added
where git wants paths relative to its own top.
"""

import os
import subprocess
from typing import Any

from bigram import artifacts, fsio, params
from bigram.codedeps import blob_id
from bigram.console import PipelineError
from bigram.context import MAX_WEIGHTS

# The largest file read whole: counts.npy of the largest W.
READ_LIMIT = 3 * 8 * MAX_WEIGHTS + 2**20


def git(*args: str, stdin: str | None = None) -> str | None:
    """git's stdout, stripped, or None if git is missing or fails."""
    try:
        r = subprocess.run(["git", *args], capture_output=True, text=True, input=stdin)
    except OSError:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def resolve(rev: str, named: str | None = None) -> tuple[str, bool]:
    """The commit of a git revision or DVC experiment, and whether it is an experiment.
    `named` is how the caller's user wrote the revision (`--rev X` by default)."""
    sha = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if sha:
        return sha, False
    try:
        from dvc.repo import Repo
        from dvc.repo.experiments.utils import resolve_name

        with Repo() as repo:
            ref = resolve_name(repo.scm, rev).get(rev)
            if ref is not None:
                return repo.scm.get_ref(str(ref)), True
    except Exception:  # not a DVC repo, or DVC could not say: no such experiment
        pass
    raise PipelineError(
        f"{named or f'--rev {rev}'}: no such git revision or DVC experiment (see `git log` "
        "and `dvc exp list`)"
    )


def lock_stages(lock: object) -> dict[str, dict[str, Any]] | None:
    """{stage: {"cmd", "params", "params_files", "deps", "outs"}} from a parsed dvc.lock, or
    None if it is not one: params is params.yaml's, params_files every params file's
    {file: {key: value}}; deps and outs are lists of {path, md5, ...} entries."""
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        return None

    def items(entry: object, kind: str) -> list[dict[str, Any]]:
        found = entry.get(kind) if isinstance(entry, dict) else None
        if not isinstance(found, list):
            return []
        return [i for i in found if isinstance(i, dict) and isinstance(i.get("path"), str)]

    out = {}
    for name, entry in stages.items():
        entry = entry if isinstance(entry, dict) else {}
        lock_params = entry.get("params")
        out[str(name)] = {
            "cmd": entry.get("cmd"),
            "params": lock_params.get("params.yaml") if isinstance(lock_params, dict) else None,
            "params_files": {str(f): v for f, v in lock_params.items() if isinstance(v, dict)}
            if isinstance(lock_params, dict)
            else {},
            "deps": items(entry, "deps"),
            "outs": items(entry, "outs"),
        }
    return out


class Source:
    """Files as they are in the workspace (rev None) or at a git revision or DVC
    experiment (read through DVC's API, from git and the DVC cache)."""

    def __init__(self, rev: str | None = None, named: str | None = None) -> None:
        self.rev = rev
        if rev:
            self.commit: str | None
            self.commit, self.is_experiment = resolve(rev, named)
        else:
            self.commit, self.is_experiment = git("rev-parse", "--verify", "--quiet", "HEAD"), False
        # Where the project is inside its git repository ("" at the top; "ml/" in a monorepo).
        self.prefix = git("rev-parse", "--show-prefix") or ""
        self.label = f"at {rev}" if rev else "in the workspace"
        self._digests: dict[str, dict[str, str] | str] = {}

    @property
    def fetch(self) -> str:
        """The command that brings this revision's DVC-tracked files into the local cache."""
        return f"`dvc exp pull <remote> {self.rev}`" if self.is_experiment else "`dvc pull`"

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
        in_git = git("cat-file", "-e", f"{self.commit}:{self.prefix}{path}") is not None
        lock = lock_stages(self.yaml("dvc.lock")) or {}
        tracked = (
            any(
                path == o["path"] or path.startswith(str(o["path"]).rstrip("/") + "/")
                for entry in lock.values()
                for o in entry["outs"] + entry["deps"]
            )
            or self.read(path + ".dvc", artifacts.JSON_LIMIT) is not None
        )
        if in_git or not tracked:
            return f"{path}: not found at {self.rev} (no such file at that revision)"
        return (
            f"{path}: tracked by DVC at {self.rev}, but not in the local DVC cache; "
            f"{self.fetch} brings it"
        )

    def refusal(self, path: str) -> str | None:
        """Why the audit will not read `path`, a path a checkpoint names (None if it
        will): only files inside the project (data.names is one, params.yaml insists)."""
        if not isinstance(path, str) or "\0" in path:
            return "not a path"
        if params.outside_project(path):
            return "outside the project"
        if self.rev is None and not fsio.within_project(path):
            return "outside the project (through a symbolic link)"
        return None

    def read(self, path: str, limit: int = READ_LIMIT) -> bytes | None:
        """The file's bytes, or None if it does not exist there or may not be read."""
        if self.refusal(path):
            return None
        try:
            if self.rev is None:
                return fsio.read_bounded(path, limit, "")
            import dvc.api

            # At a revision DVC reads from git's top, so a project in a subfolder is prefixed.
            with dvc.api.open(self.prefix + path, rev=self.commit, mode="rb") as f:
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
        if self.rev is None:
            if not os.path.lexists(path):
                return "missing"
            try:
                data = fsio.read_bounded(path, READ_LIMIT, "")
            except PipelineError as e:  # a FIFO, a device, too large: said, never read
                return f"not read: {str(e).split('; ')[0]}"
        else:
            found = self.read(path)
            if found is None:
                return "missing"
            data = found
        return {"md5": artifacts.md5_bytes(data), "sha256": artifacts.sha256_bytes(data)}

    def yaml(self, path: str) -> object:
        data = self.read(path, params.PARAMS_LIMIT * 64)
        try:
            return params.parse_yaml(data, path) if data is not None else None
        except PipelineError:  # a broken file is reported as the disagreements it causes
            return None

    def blobs(self, paths: list[str]) -> dict[str, str | None]:
        """The git blob id of each file here (None where there is no such file): of the
        file's bytes in the workspace, from git's tree at a revision."""
        if self.rev is None:
            out: dict[str, str | None] = {}
            for path in paths:
                try:
                    out[path] = blob_id(fsio.read_bounded(path, READ_LIMIT, ""))
                except PipelineError:
                    out[path] = None
            return out
        return tree_blobs(str(self.commit), paths, self.prefix)


def tree_blobs(commit: str, paths: list[str], prefix: str = "") -> dict[str, str | None]:
    """{path: blob id in `commit`'s tree, or None}, in one git call."""
    query = "".join(f"{commit}:{prefix}{p}\n" for p in paths)
    answer = git("cat-file", "--batch-check=%(objectname) %(objecttype)", stdin=query)
    lines = answer.splitlines() if answer is not None else []
    out: dict[str, str | None] = dict.fromkeys(paths)
    for path, line in zip(paths, lines):
        sha, _, kind = line.partition(" ")
        out[path] = sha if kind == "blob" else None
    return out


def commit_holding(
    code: dict[str, str], prefix: str | None = None, search: int = 200
) -> str | None:
    """A commit (HEAD if it does; else the newest of the last `search` that touched these
    files, experiments included) whose tree holds exactly these files' contents, or None."""
    if not code:
        return None
    prefix = git("rev-parse", "--show-prefix") or "" if prefix is None else prefix
    paths = sorted(code)
    found = git("rev-list", f"--max-count={search}", "--all", "--", *paths) or ""
    head = git("rev-parse", "--verify", "--quiet", "HEAD")
    for commit in ([head] if head else []) + found.split():
        if tree_blobs(commit, paths, prefix) == code:
            return commit
    return None
