"""`bigram check`: re-run every stage dvc.lock records, in a scratch copy, and compare.

    bigram check                 # the workspace's dvc.lock
    bigram check --rev REV       # a git revision or DVC experiment

The scratch copy holds only what dvc.lock names as the stages' inputs (their code, the
names file, params.yaml) as they are in the workspace or at the revision; each stage's
recorded command runs there with that code, in dvc.lock's order, and every output it
writes is compared with the md5 dvc.lock records: identical, differs (and where), or
not checked (why, and what brings it). Nothing in the workspace is written. Exit 0 when
every output is identical, 1 when one differs or a stage fails, 2 when nothing differs
but something could not be checked: the same as `bigram lineage --verify`.
"""

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bigram import artifacts, differ, fsio, params
from bigram.console import PipelineError
from bigram.revision import READ_LIMIT, Source, lock_stages


def dir_md5(directory: Path) -> tuple[str, dict[str, str]]:
    """DVC's md5 of a directory output (the md5 of its manifest, + ".dir"), and the
    manifest {relpath: md5}."""
    files = {
        p.relative_to(directory).as_posix(): artifacts.md5_bytes(p.read_bytes())
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
    entries = [{"md5": md5, "relpath": rel} for rel, md5 in sorted(files.items())]
    manifest = json.dumps(entries, sort_keys=True).encode()
    return hashlib.md5(manifest).hexdigest() + ".dir", files


def _parse_params(data: bytes, name: str) -> object:
    if name.endswith(".toml"):
        import tomllib

        try:
            return tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            raise PipelineError(f"{name} is not valid TOML; fix it") from None
    return params.parse_yaml(data, name)


def _cached(md5: str) -> bytes | None:
    """A file's bytes from the local DVC cache, by its md5, wherever cache.dir puts it."""
    try:
        from dvc.repo import Repo

        with Repo(".") as repo:
            path = repo.cache.local.oid_to_path(md5)
        return fsio.read_bounded(path, READ_LIMIT, "")
    except Exception:  # no such object, no DVC repo: not available
        return None


class Check:
    def __init__(self, src: Source, scratch: Path) -> None:
        self.src, self.scratch = src, scratch
        self.rows: list[dict[str, str]] = []

    def row(self, stage: str, path: str, status: str, detail: str = "") -> None:
        self.rows.append({"stage": stage, "path": path, "status": status, "detail": detail})
        shown = f"{status}: {detail}" if detail else status
        print(f"{stage:9s} {path:32s} {shown}", flush=True)

    def recorded(self, path: str, md5: str) -> bytes | None:
        """The bytes dvc.lock's md5 stands for: the file here if it is those, else the cache."""
        data = self.src.read(path)
        if data is not None and artifacts.md5_bytes(data) == md5:
            return data
        return _cached(md5)

    def place(self, path: str, md5: object) -> str | None:
        """Copy an input into the scratch copy; why not, if it cannot be."""
        data = self.src.read(path)
        if data is None:
            return self.src.why_missing(path) if self.src.rev else f"{path}: not readable here"
        target = self.scratch / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return None

    def where(self, path: str, md5: str, found: Path) -> str:
        """Where the rebuilt output differs from what dvc.lock records."""
        vocab_file = self.scratch / artifacts.VOCAB
        vocab = json.loads(vocab_file.read_text()) if vocab_file.is_file() else None
        if md5.endswith(".dir"):
            from bigram.audit import dir_manifest

            manifest = dir_manifest(md5)
            _, files = dir_md5(found)
            if manifest is None:
                return f"dvc.lock records {md5}; its manifest is not in the local DVC cache"
            parts = []
            for rel in sorted(set(manifest) | set(files)):
                if manifest.get(rel) == files.get(rel):
                    continue
                if rel not in files or rel not in manifest:
                    parts.append(f"{rel} {'missing' if rel not in files else 'not recorded'}")
                    continue
                old = self.recorded(f"{path}/{rel}", manifest[rel])
                new = (found / rel).read_bytes()
                detail = differ.describe(rel, old, new, vocab) if old else "other bytes"
                parts.append(f"{rel}: {detail}")
            return "; ".join(parts[:3]) + (f"; … ({len(parts)} files)" if len(parts) > 3 else "")
        old = self.recorded(path, md5)
        if old is None:
            return f"dvc.lock records md5 {md5}, which is not in the local DVC cache to compare"
        return differ.describe(path, old, found.read_bytes(), vocab)

    def run(self) -> int:
        lock = lock_stages(self.src.yaml("dvc.lock"))
        if not lock:
            raise PipelineError(f"dvc.lock: missing or not a DVC lock file {self.src.label}")
        produced = {o["path"] for entry in lock.values() for o in entry["outs"]}
        files = {params.PARAMS_FILE} | {f for e in lock.values() for f in e["params_files"]}
        current: dict[str, dict[str, object]] = {}
        for name in sorted(files):
            data = self.src.read(name, params.PARAMS_LIMIT)
            if data is None:
                raise PipelineError(f"{name}: not found {self.src.label}")
            (self.scratch / name).write_bytes(data)
            current[name] = params.flatten(_parse_params(data, name))
        broken: set[str] = set()  # outputs that could not be rebuilt
        for name, entry in lock.items():
            outs = [o["path"] for o in entry["outs"]]
            why = None
            for dep in entry["deps"]:
                if dep["path"] in produced:
                    if dep["path"] in broken:
                        why = f"its input {dep['path']} could not be rebuilt"
                    continue
                why = why or self.place(dep["path"], dep.get("md5"))
            if why:
                for out in outs:
                    self.row(name, out, "not checked", why)
                broken.update(outs)
                continue
            self.stale(name, entry, current)
            cmd = shlex.split(str(entry["cmd"] or ""))
            if cmd[:1] == ["python"]:
                cmd[0] = sys.executable  # the interpreter this command runs in, as DVC's PATH
            env = {**os.environ, "PYTHONPATH": str(self.scratch), "PYTHONDONTWRITEBYTECODE": "1"}
            done = subprocess.run(cmd, cwd=self.scratch, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                error = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
                for out in outs:
                    self.row(name, out, "differs", f"the stage failed here: {error}")
                broken.update(outs)
                continue
            for out in entry["outs"]:
                self.compare(name, out["path"], out.get("md5"))
        return self.exit_code()

    def stale(
        self, name: str, entry: dict[str, Any], current: dict[str, dict[str, object]]
    ) -> None:
        """Inputs that are not what dvc.lock records: the lock is stale, `dvc repro` runs it."""
        for dep in entry["deps"]:
            target = self.scratch / dep["path"]
            if target.is_file() and artifacts.md5_bytes(target.read_bytes()) != dep.get("md5"):
                self.row(
                    name, dep["path"], "differs", "not the input dvc.lock records; run `dvc repro`"
                )
        for file, locked in entry["params_files"].items():
            for key, value in params.flatten(locked).items():
                found = current.get(file, {}).get(key)
                if found != value:
                    self.row(
                        name,
                        f"{file} {key}",
                        "differs",
                        f"dvc.lock records {value!r}, {file} has {found!r}; run `dvc repro`",
                    )

    def compare(self, stage: str, path: str, md5: object) -> None:
        found = self.scratch / path
        if not isinstance(md5, str):
            self.row(stage, path, "not checked", "dvc.lock records no md5 for it")
            return
        if not found.exists():
            self.row(stage, path, "differs", "the stage did not write it here")
            return
        if found.is_dir():
            again, files = dir_md5(found)
            if again == md5:
                self.row(stage, path, "identical", f"{len(files)} files")
                return
        elif artifacts.md5_bytes(found.read_bytes()) == md5:
            self.row(stage, path, "identical")
            return
        self.row(stage, path, "differs", self.where(path, md5, found))

    def exit_code(self) -> int:
        statuses = [r["status"] for r in self.rows]
        return 1 if "differs" in statuses else 2 if "not checked" in statuses else 0


def check_command(rev: str | None, as_json: bool) -> int:
    """The `check` subcommand; returns the exit code."""
    if not Path("dvc.yaml").is_file():
        raise PipelineError("bigram check re-runs the project: run it from the project root")
    src = Source(rev)
    with tempfile.TemporaryDirectory(prefix="bigram-check-") as scratch:
        check = Check(src, Path(scratch))
        if as_json:
            with open(os.devnull, "w") as quiet:
                stdout, sys.stdout = sys.stdout, quiet
                try:
                    code = check.run()
                finally:
                    sys.stdout = stdout
            print(json.dumps({"rev": rev, "ok": code == 0, "outputs": check.rows}, indent=2))
            return code
        code = check.run()
    counts = {
        s: sum(r["status"] == s for r in check.rows)
        for s in ("identical", "differs", "not checked")
    }
    print(
        f"checked every stage of dvc.lock {src.label} in a scratch copy: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
    )
    return code
