"""A checkpoint's lineage in a standard form: an in-toto Statement v1 whose predicate is
SLSA Provenance v1, so supply-chain tools read it without this project
(`bigram lineage --provenance CHECKPOINT`). This module owns that mapping, and the
definition of its build type, below.

Specs followed: in-toto attestation v1 (spec/v1/statement.md, resource_descriptor.md,
digest_set.md, field_types.md in github.com/in-toto/attestation) and SLSA Provenance
v1.0 (https://slsa.dev/spec/v1.0/provenance).

Build type BUILD_TYPE (v3; v2 named the code by one git commit, v1 had no "model"
section): the train stage of this DVC pipeline, with the chain prepare -> split -> train
that its checkpoint records.

- subject: the one checkpoint, `name` the path it was read from (its file name if that
  path is absolute or outside the project), `digest` its sha256.
- externalParameters: the params.yaml sections the chain recorded, as set:
  {"data": {"names"}, "split": {...}, "model": {"context"}, "train": {...}}.
- internalParameters: {"versions": ...}, the library versions the checkpoint records (the
  project's pins; for schema 1, the installed ones); for a schema-1 checkpoint whose code
  cannot be named, "codeUnidentified" says why.
- resolvedDependencies, in chain order:
  - the code, by content: `name` "code", `digest` {"gitCommit"} of a commit whose tree
    holds exactly the recorded code, found when the statement is made (HEAD if it does),
    `uri` "git+<repository>@<commit>" when the repository is known; listed only if one
    exists. Then every file of the stages' code: `name` its project path, `digest`
    {"gitBlob"}, `annotations.bigram_usedBy` the stages that ran it. The blob ids are
    what the checkpoint records, so they hold whatever the history (uncommitted work,
    a shallow clone, a rebase).
  - every file of the chain by its project path: the names file (`name` equals
    externalParameters.data.names), then the artifacts prepare and split wrote, each
    with `digest` {"sha256", "md5"} (md5 as dvc.lock has it; consumers should ignore it)
    and `annotations.bigram_producedBy`, the stage that wrote it; `uri` where DVC keeps
    it on the project's default remote, when that remote has a public URL.
- runDetails.builder.id BUILDER_ID: the stage run on the machine of whoever ran it
  (`dvc repro`, `dvc exp run` or `python -m stages.train`); the checkpoint's metadata is
  reported by that process and nothing attests it, so SLSA Build L1 at most.
- runDetails.byproducts: the previous checkpoint of the same run, if any (train writes
  it in the same invocation; it is not an input).
- No runDetails.metadata: the run records no invocation id or time, and the output
  holds nothing machine-specific, so the same checkpoint always gives the same bytes.
"""

import os
import re
import urllib.parse
from typing import Any

from bigram import artifacts, checkpoint
from bigram.params import outside_project
from bigram.revision import git

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
# The project has no web home: `.invalid` (RFC 6761) can never resolve to, or be owned
# by, anyone else. These two TypeURIs name this build type and builder; this docstring is
# their documentation. Bump the version when the meaning of a field changes.
NAMESPACE = "https://neural-bigram-pipeline.invalid"
BUILD_TYPE = f"{NAMESPACE}/buildtypes/dvc-train/v3"
BUILDER_ID = f"{NAMESPACE}/builders/local-dvc-stage/v1"


def _subject_name(path: str) -> str:
    """The path as given, unless it would put this machine's layout in the output."""
    lexical = os.path.normpath(path)
    return os.path.basename(lexical) if outside_project(path) else lexical


def _code(
    meta: checkpoint.Meta, commit: str | None, repo_uri: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(the code's ResourceDescriptors, internalParameters about the code)."""
    if "code" in meta:  # schema 1: a commit, trusted only with a clean tree
        code = meta["code"]
        if code["commit"] is not None and code["dirty"] is False:
            commit, files = code["commit"], []
        else:
            reason = code.get("reason") or "no git commit recorded"
            if code["commit"] is not None:
                reason = f"trained from uncommitted changes on top of {code['commit']}"
            return [], {"codeUnidentified": reason}
    else:
        used: dict[tuple[str, str], list[str]] = {}
        for link in meta["lineage"]:
            for path, blob in link["code"].items():
                used.setdefault((path, blob), []).append(link["stage"])
        files = [
            {"name": path, "digest": {"gitBlob": blob}, "annotations": {"bigram_usedBy": stages}}
            for (path, blob), stages in sorted(used.items())
        ]
    if commit is None:
        return files, {}
    descriptor: dict[str, Any] = {"name": "code", "digest": {"gitCommit": commit}}
    if repo_uri:
        descriptor["uri"] = f"git+{repo_uri}@{commit}"
    return [descriptor, *files], {}


def statement(
    path: str,
    data: bytes,
    meta: checkpoint.Meta,
    repo_uri: str | None = None,
    commit: str | None = None,
    data_uri: str | None = None,
) -> dict[str, Any]:
    """The in-toto Statement v1 with a SLSA Provenance v1 predicate for the checkpoint
    read from `path`, with bytes `data` and metadata `meta` (as checkpoint.parse returns
    it, so already checked). `repo_uri`: the code's repository, if public; `commit`: a
    commit whose tree holds exactly the recorded code (revision.commit_holding), if any;
    `data_uri`: the DVC remote the data is pushed to, if public (each file's `uri` is
    where DVC 3 keeps it there: files/md5/<2 hex>/<30 hex>)."""
    chain = meta["lineage"]
    external: dict[str, Any] = {}
    files: list[dict[str, Any]] = []
    seen: set[str] = set()
    for link in chain:
        external.update(link["params"])
        for kind in ("inputs", "outputs"):
            for file, md5 in link[kind].items():
                if file in seen:
                    continue  # an output is the next stage's input
                seen.add(file)
                descriptor = {"name": file, "digest": {"sha256": link["sha256"][file], "md5": md5}}
                if data_uri:
                    descriptor["uri"] = f"{data_uri.rstrip('/')}/files/md5/{md5[:2]}/{md5[2:]}"
                if kind == "outputs":
                    descriptor["annotations"] = {"bigram_producedBy": link["stage"]}
                files.append(descriptor)
    code, about_code = _code(meta, commit, repo_uri)
    build_definition = {
        "buildType": BUILD_TYPE,
        "externalParameters": external,
        "internalParameters": {"versions": meta["versions"], **about_code},
        "resolvedDependencies": code + files,
    }
    run_details: dict[str, Any] = {"builder": {"id": BUILDER_ID}}
    previous = meta["previous"]
    if previous:
        run_details["byproducts"] = [
            {
                "name": previous["path"],
                "digest": {"sha256": previous["sha256"], "md5": previous["md5"]},
            }
        ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": _subject_name(path), "digest": {"sha256": artifacts.sha256_bytes(data)}}
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"buildDefinition": build_definition, "runDetails": run_details},
    }


def public_uri(remote: str) -> str | None:
    """A git remote as a URI fit to publish: no user, password or token, no query or
    fragment, scheme and host in lowercase; `git@host:path` becomes ssh://host/path.
    None for a local path, file:// or anything unrecognised."""
    scp = re.fullmatch(r"(?:[^@/:]+@)?([A-Za-z0-9.-]{2,}):(?!//)([^\\]+)", remote)
    if scp:
        return f"ssh://{scp[1].lower()}/{scp[2].lstrip('/')}"
    try:
        parts = urllib.parse.urlsplit(remote)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname  # lowercase, without the userinfo
    if parts.scheme.lower() not in {"https", "http", "ssh", "git"} or not host:
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc, parts.path, "", ""))


def data_remote_uri() -> str | None:
    """The default DVC remote's URL, if it is one fit to publish (s3, gs, azure, http(s),
    ssh and the like; not a local path), or None."""
    try:
        from dvc.repo import Repo

        with Repo(".") as repo:
            config = repo.config
            name = config["core"].get("remote")
            url = config["remote"][name]["url"] if name else None
    except Exception:  # no DVC repository, or no such remote: nothing to publish
        return None
    if not isinstance(url, str):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() in {"", "file", "local"} or not parts.netloc:
        return None
    return urllib.parse.urlunsplit((parts.scheme.lower(), parts.hostname or "", parts.path, "", ""))


def repo_uri() -> str | None:
    """The `origin` remote of the repository here, made public (see public_uri), or None."""
    remote = git("remote", "get-url", "origin")
    return public_uri(remote) if remote else None
