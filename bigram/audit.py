"""The audit: show a checkpoint's lineage, or prove it against the project.

    bigram lineage models/model.safetensors            # the chain, readable
    bigram lineage --json models/model.safetensors     # the same, for tools
    bigram lineage --verify models/model.safetensors   # re-derive and compare
    bigram lineage --verify --rev exp-name models/model.safetensors

--verify trusts nothing the checkpoint, the lineage files or dvc.lock claim: it re-derives
the whole chain in memory from the names file and the recorded params with the stages'
own derive() functions (stages/) — vocabulary, pairs, split, counts, and every checkpoint up
to this one, metadata included — and compares each with what was recorded, bit for bit,
naming the first stage that differs and where. It also compares every recorded digest
with the files there and with dvc.lock, the recorded params with params.yaml and
dvc.lock, and the git blob id of each file of each stage's code with the files there.
Exit 0 when all agree; otherwise one line per disagreement and exit 1. A check that
cannot be made (an object missing from the local DVC cache, code this audit does not
run) is never skipped silently: it gets a line saying what would bring it, and exit 2.
"""

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

import bigram
from bigram import artifacts, checkpoint, differ, environment, fsio, lineage, params
from bigram.codedeps import code_digests, code_files, stage_entry
from bigram.console import PipelineError
from bigram.revision import Source, commit_holding, lock_stages


def dir_manifest(md5: str) -> dict[str, Any] | None:
    """{relpath: md5} of a directory out recorded in dvc.lock, read from the DVC cache
    wherever `cache.dir` puts it; None if the local cache does not have it."""
    try:
        from dvc.repo import Repo

        with Repo(".") as repo:
            entry = Path(repo.cache.local.oid_to_path(md5))
        return {e["relpath"]: e["md5"] for e in json.loads(entry.read_text())}
    except Exception:  # no DVC repo, no such object, a broken manifest: not available
        return None


def _locked_files(stages: dict[str, Any]) -> tuple[list[tuple[str, str, str | None]], list[str]]:
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
                manifest = dir_manifest(md5)
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


def running_root() -> Path:
    """The project whose code this process runs (bigram is installed editable from it)."""
    return Path(bigram.__file__).resolve().parents[1]


class Audit:
    """The checks of one checkpoint against one source, and what disagreed."""

    def __init__(
        self, path: str, data: bytes, W: np.ndarray, meta: checkpoint.Meta, src: Source
    ) -> None:
        self.path, self.data, self.W, self.meta, self.src = path, data, W, meta, src
        self.problems: list[str] = []
        self.not_made: list[str] = []
        self.checks = 0
        self.rederived: list[str] = []  # what was re-derived and found bit-identical
        self.lock = lock_stages(src.yaml("dvc.lock"))
        self.locked, unlisted = _locked_files(self.lock or {})
        self.not_made += [
            f"not checked: {what}: the md5 of each file inside is in the directory's manifest, "
            f"which is not in the local DVC cache; {src.fetch} brings it"
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
        self.check_tracked_names()
        self.check_own_file()
        self.check_previous()
        self.check_code()
        self.rederive()

    def check_params_and_files(self) -> None:
        current = params.flatten(self.src.yaml(params.PARAMS_FILE))
        recorded_files: dict[str, str] = {}
        recorded_sha256: dict[str, str] = {}
        for stage in self.meta["lineage"]:
            name = stage["stage"]
            entry = (self.lock or {}).get(name)
            if self.lock is not None and entry is None:
                self.problems.append(f"dvc.lock: no {name} stage; run `dvc repro`")
            locked_params = params.flatten(entry["params"]) if entry else {}
            for key, value in params.flatten(stage["params"]).items():
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

    def check_tracked_names(self) -> None:
        """A names file tracked with `dvc add`: its .dvc file must name the recorded content
        too, or `dvc status` and the checkpoint tell two stories."""
        names, md5 = next(iter(self.meta["lineage"][0]["inputs"].items()))
        dvc_file = self.src.yaml(names + ".dvc")
        if dvc_file is None:
            return
        outs = dvc_file.get("outs") if isinstance(dvc_file, dict) else None
        tracked = (
            outs[0].get("md5")
            if isinstance(outs, list) and outs and isinstance(outs[0], dict)
            else None
        )
        self.checks += 1
        if tracked != md5:
            self.problems.append(
                f"{names}.dvc records md5 {tracked}, but the checkpoint was trained on md5 {md5}; "
                f"`dvc add {names}` then `dvc repro` makes them one"
            )

    def check_own_file(self) -> None:
        """The checkpoint file itself: where the run put it, and what dvc.lock says it is."""
        own = artifacts.md5_bytes(self.data)
        steps = self.meta["lineage"][-1]["params"]["train"]["steps"]
        step = self.meta["step"]
        homes = [artifacts.checkpoint_path(step)]
        named = os.path.normpath(self.path)
        if step == steps:
            homes.append(artifacts.MODEL)
        elif named == os.path.normpath(artifacts.MODEL):
            self.problems.append(
                f"{self.path} holds the step-{step} checkpoint, but the final model is the "
                f"step-{steps} one (train.steps); run `dvc checkout {artifacts.MODEL}` "
                "or `dvc repro`"
            )
        if not params.outside_project(named) and named not in homes:
            homes.append(named)  # wherever it was read from, dvc.lock's word for that file too
        for home in homes:
            self.checks += 1
            found = self.src.digest(home)
            if found != own and home != named:
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
            algorithm, recorded = (
                ("md5", prev["md5"]) if found != prev["md5"] else ("sha256", prev["sha256"])
            )
            self.expect(
                f"previous checkpoint {prev['path']} {algorithm}",
                recorded,
                self.src.digest(prev["path"], algorithm),
            )

    def check_code(self) -> None:
        """Each stage's code, by content: the recorded blob ids against the files there."""
        stages_of: dict[str, list[str]] = {}
        recorded: dict[str, str] = {}
        for link in self.meta["lineage"]:
            for path, blob in link["code"].items():
                stages_of.setdefault(path, []).append(link["stage"])
                recorded.setdefault(path, blob)
            if self.src.rev is None and Path(stage_entry(link["stage"])).is_file():
                for path in sorted(set(code_files(stage_entry(link["stage"]))) - set(link["code"])):
                    self.problems.append(
                        f"code: {path} is now part of the {link['stage']} stage's code, which "
                        "the checkpoint does not record; run `dvc repro`"
                    )
        found = self.src.blobs(sorted(recorded))
        for path in sorted(recorded):
            self.checks += 1
            differs = {
                link["stage"]
                for link in self.meta["lineage"]
                if path in link["code"] and link["code"][path] != found[path]
            }
            if differs:
                blob = found[path]
                now = f"blob {blob[:12]}" if blob else "no such file"
                self.problems.append(
                    f"code: {path} {self.src.label} ({now}) is not the code the "
                    f"{', '.join(s for s in lineage.STAGES if s in differs)} stage ran "
                    f"(blob {recorded[path][:12]}); run `dvc repro`"
                )

    # --- re-deriving the chain --------------------------------------------------------

    def rederive(self) -> None:
        """Re-run prepare, split and train in memory from the names file, with the recorded
        params and the stages' own functions, and compare every output bit for bit."""
        chain = self.meta["lineage"]
        root = running_root()
        for link in chain:
            ours = (
                code_digests(stage_entry(link["stage"]), root)
                if (root / stage_entry(link["stage"])).is_file()
                else {}
            )
            if ours != link["code"]:
                path = next(
                    p
                    for p in sorted(set(ours) | set(link["code"]))
                    if ours.get(p) != link["code"].get(p)
                )
                commit = commit_holding(link["code"])
                where = (
                    f"verify from a checkout of commit {commit[:12]}, which holds it"
                    if commit
                    else "no commit in this repository holds it"
                )
                self.not_made.append(
                    f"not re-derived: this audit runs other code than the {link['stage']} stage "
                    f"that made the checkpoint ({path} differs); {where}"
                )
                return
        try:
            data = params.section(params.DataParams, chain[0]["params"]["data"], self.path)
            split = params.section(params.SplitParams, chain[1]["params"]["split"], self.path)
            model = params.section(params.ModelParams, chain[1]["params"]["model"], self.path)
            train = params.section(params.TrainParams, chain[2]["params"]["train"], self.path)
        except PipelineError as e:
            self.not_made.append(f"not re-derived: the recorded params are not this code's ({e})")
            return
        pinned = self.src.read(environment.PINS_FILE, params.PARAMS_LIMIT)
        try:
            text = pinned.decode() if pinned is not None else None
            versions = environment.declared("train", root, environment.pins(text=text or ""))
        except (PipelineError, UnicodeDecodeError) as e:
            self.not_made.append(f"not re-derived: the pinned versions {self.src.label}: {e}")
            return
        names = data.names
        raw = self.src.read(names, artifacts.NAMES_LIMIT)
        if raw is None:
            self.not_made.append(f"not re-derived: {self.src.why_missing(names)}")
            return
        if artifacts.md5_bytes(raw) != chain[0]["inputs"][names]:
            return  # a disagreement already said: the names file is not the recorded one
        from stages import prepare
        from stages import split as splitting
        from stages import train as training

        try:
            prepared = prepare.derive(raw, data, chain[0]["code"])
            if not self.same(
                "prepare", prepared.chain[0], chain[0], prepared.files, prepared.vocab
            ):
                return
            read = {p: prepared.files[p] for p in (artifacts.VOCAB, artifacts.PAIRS)}
            cut = splitting.derive(
                prepared.vocab, prepared.pairs, read, prepared.chain, split, model, chain[1]["code"]
            )
            if not self.same("split", cut.chain[1], chain[1], cut.files, prepared.vocab):
                return
            read = {
                artifacts.VOCAB: prepared.files[artifacts.VOCAB],
                artifacts.COUNTS: cut.files[artifacts.COUNTS],
            }
            saved: dict[str, bytes] = {}

            def keep_last(path: str, data: bytes) -> None:
                # Only the newest: a run can write thousands of checkpoints of a large W.
                saved.clear()
                saved[path] = data

            training.derive(
                prepared.vocab,
                cut.counts[0].copy(),
                read,
                cut.chain,
                train,
                chain[2]["code"],
                versions,
                keep_last,
                until=self.meta["step"],
            )
        except PipelineError as e:
            self.problems.append(f"re-deriving the chain from {names} fails: {e}")
            return
        again = saved[artifacts.checkpoint_path(self.meta["step"])]
        self.checks += 1
        if again != self.data:
            where = differ.describe(self.path, self.data, again, prepared.vocab)
            self.problems.append(
                f"train: {self.path} is not the checkpoint re-derived from {names} at "
                f"step {self.meta['step']}: {where}"
            )
            return
        self.rederived.append(f"the checkpoint at step {self.meta['step']}")

    def same(
        self,
        stage: str,
        again: lineage.Link,
        recorded: lineage.Link,
        files: dict[str, bytes],
        vocab: list[str],
    ) -> bool:
        """Whether a re-derived record equals the recorded one; if not, say where."""
        self.checks += 1
        if again == recorded:
            self.rederived += [os.path.basename(p) for p in files if p in recorded["outputs"]]
            return True
        for path in [p for p in files if p in recorded["outputs"]]:  # in the order written
            md5 = recorded["outputs"][path]
            if again["outputs"][path] == md5:
                continue
            here = self.src.read(path)
            if here is not None and artifacts.md5_bytes(here) == md5:
                where = differ.describe(path, here, files[path], vocab)
            else:
                where = f"recorded md5 {md5}, re-derived {again['outputs'][path]}"
            self.problems.append(
                f"{stage}: {path} is not what {stage} derives from the recorded inputs: {where}"
            )
        if again["outputs"] == recorded["outputs"]:
            fields = [k for k in sorted(recorded) if recorded[k] != again[k]]
            self.problems.append(
                f"{stage}: the lineage record differs from the re-derived one in "
                f"{', '.join(fields)}"
            )
        return False

    def summary(self) -> str:
        names = self.meta["lineage"][0]["params"]["data"]["names"]
        made = f"{self.checks} checks agree"
        if self.not_made:
            made += f"; {len(self.not_made)} could not be made"
        if self.rederived and self.rederived[-1].startswith("the checkpoint"):
            made += f"; re-derived from {names}: {', '.join(self.rederived)}, bit-identical"
        else:
            made += "; the chain was not re-derived"
        return f"verified {self.path} {self.src.label}: {made}"


def _code_line(meta: checkpoint.Meta) -> str:
    if checkpoint.schema_of(meta) == 1:
        recorded = meta["code"]
        if recorded["commit"] is None:
            return "no git"
        return f"git {recorded['commit'][:12]} ({'DIRTY' if recorded['dirty'] else 'clean'})"
    code: dict[str, str] = {}
    for link in meta["lineage"]:
        code.update(link["code"])
    commit = commit_holding(code)
    held = f"held by commit {commit[:12]}" if commit else "no commit in this repository holds it"
    return f"{len(code)} files by content, {held}"


def describe(path: str, data: bytes, meta: checkpoint.Meta) -> str:
    """The chain from the names file to the checkpoint, for a person."""
    schema = checkpoint.schema_of(meta)
    lines = [
        f"checkpoint {path}  md5 {artifacts.md5_bytes(data)}  (schema {schema})",
        f"  step {meta['step']}, loss {meta['loss']:.6f} "
        f"(ce {meta['ce']:.6f} + reg {meta['reg']:.6f}), vocabulary of {len(meta['vocab'])}",
    ]
    if meta["previous"]:
        lines.append(f"  previous {meta['previous']['path']}  md5 {meta['previous']['md5']}")
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    lines.append(f"  code {_code_line(meta)}; {versions}")
    for stage in meta["lineage"]:
        shown = " ".join(f"{k}={v}" for k, v in params.flatten(stage["params"]).items())
        lines.append(f"{stage['stage']:8s} {shown}")
        for kind in ("inputs", "outputs"):
            for file, digest in stage[kind].items():
                lines.append(f"    {'in ' if kind == 'inputs' else 'out'}  {file:32s} md5 {digest}")
    lines.append(f"train    -> {path}")
    return "\n".join(lines)


def _older(path: str, meta: checkpoint.Meta) -> str:
    """Why a schema-1 checkpoint is shown but not verified, and how to verify it."""
    commit = meta["code"]["commit"]
    how = (
        f"check out the code that made it (`git worktree add ../v1 {commit[:12]}`) and run "
        "`bigram lineage --verify` there"
        if commit
        else "it recorded no code commit, so only the code that made it can verify it"
    )
    dirty = ", with uncommitted changes" if meta["code"]["dirty"] else ""
    return (
        f"not checked: {path} was written by checkpoint schema 1 (code commit "
        f"{commit[:12] if commit else 'none'}{dirty}); this code writes schema "
        f"{checkpoint.SCHEMA} and cannot re-derive it: {how}"
    )


def lineage_command(
    path: str,
    verify: bool,
    as_json: bool,
    rev: str | None,
    provenance: bool = False,
    sign: str | None = None,
    signature: tuple[str, str] | None = None,
) -> int:
    """The `lineage` subcommand; returns the exit code. `sign`: a private key to sign the
    provenance with; `signature`: (a DSSE envelope, a public key) to check first."""
    src = Source(rev)
    if rev is None or params.outside_project(path):
        # The user named this file: read it wherever it is, but only a bounded regular file.
        if not os.path.lexists(path):
            raise PipelineError(src.why_missing(path))
        data = fsio.read_bounded(path, checkpoint.LIMIT, "name a checkpoint file")
    else:
        found = src.read(path, checkpoint.LIMIT)
        if found is None:
            raise PipelineError(src.why_missing(path))
        data = found
    W, meta = checkpoint.parse(data, path)
    if provenance:  # the statement is JSON whether or not --json was given
        from bigram import provenance as slsa

        code: dict[str, str] = {}
        for link in meta["lineage"]:
            code.update(link.get("code", {}))
        statement = slsa.statement(
            path, data, meta, slsa.repo_uri(), commit_holding(code), slsa.data_remote_uri()
        )
        if sign:  # one line: an .intoto.jsonl file holds one envelope per line
            from bigram.signing import sign as dsse_sign

            print(json.dumps(dsse_sign(statement, sign), sort_keys=True))
        else:
            print(json.dumps(statement, indent=2, sort_keys=True, allow_nan=False))
        return 0
    signed = ""
    if signature:  # before anything else: a statement not signed by this key is not used
        from bigram.signing import verify as dsse_verify

        _, signed = dsse_verify(*signature, data)
    if not verify:
        shown = {"path": path, "md5": artifacts.md5_bytes(data), **meta}
        print(
            json.dumps(shown, indent=2, sort_keys=True) if as_json else describe(path, data, meta)
        )
        return 0
    if not Path("dvc.yaml").is_file():
        raise PipelineError(
            "--verify compares with the project: run it from the project root, where dvc.yaml is"
        )
    if checkpoint.schema_of(meta) != checkpoint.SCHEMA:
        line = _older(path, meta)
        print(
            json.dumps(
                {"path": path, "ok": False, "checks": 0, "problems": [], "not_checked": [line]},
                indent=2,
            )
            if as_json
            else line
        )
        return 2
    audit = Audit(path, data, W, meta, src)
    audit.run()
    if as_json:
        report = {
            "path": path,
            **({"signature": signed} if signed else {}),
            "ok": not audit.problems and not audit.not_made,
            "checks": audit.checks,
            "rederived": audit.rederived,
            "problems": audit.problems,
            "not_checked": audit.not_made,
        }
        print(json.dumps(report, indent=2))
    else:
        for line in [signed] * bool(signed) + audit.problems + audit.not_made:
            print(line)
        if not audit.problems:
            print(audit.summary())
    # 1: something disagrees; 2: nothing disagrees, but not every check could be made.
    return 1 if audit.problems else 2 if audit.not_made else 0
