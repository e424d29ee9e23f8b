"""bigram.provenance: a checkpoint's lineage as an in-toto Statement v1 with a SLSA
Provenance v1 predicate, checked against the field definitions of both specs."""

import base64
import copy
import hashlib
import json
import re
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bigram import artifacts, checkpoint, provenance
from tests.conftest import bigram, commit_all, init_git, sh

MODEL = "models/model.safetensors"

# --- a checker written from the specs ------------------------------------------------
# in-toto attestation v1: spec/v1/statement.md, resource_descriptor.md, digest_set.md,
# field_types.md; SLSA Provenance v1.0: https://slsa.dev/spec/v1.0/provenance.

STATEMENT_FIELDS = {"_type", "subject", "predicateType", "predicate"}
DESCRIPTOR_FIELDS = {"name", "uri", "digest", "content", "downloadLocation", "mediaType"}
DESCRIPTOR_FIELDS |= {"annotations"}
# DigestSet: the named standard algorithms are lowercase hex (lengths in hex digits);
# gitCommit/gitTree/gitBlob/gitTag are SHA-1 (40) or SHA-256 (64) object names.
HEX_LENGTHS = {
    "sha256": {64},
    "sha224": {56},
    "sha384": {96},
    "sha512": {128},
    "sha512_224": {56},
    "sha512_256": {64},
    "sha3_224": {56},
    "sha3_256": {64},
    "sha3_384": {96},
    "sha3_512": {128},
    "sha1": {40},
    "md5": {32},
    "ripemd160": {40},
    "sm3": {64},
    **{f"git{kind}": {40, 64} for kind in ("Commit", "Tree", "Blob", "Tag")},
}
# TypeURI/ResourceURI: an RFC 3986 URI, scheme (and authority) in lowercase.
URI = re.compile(r"[a-z][a-z0-9+.-]*:[^\s]+")
AUTHORITY = re.compile(r"[a-z][a-z0-9+.-]*://([^/?#]*)")
# Timestamp: RFC 3339, in UTC ("Z").
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def uri_problems(value, where):
    if not isinstance(value, str) or not URI.fullmatch(value):
        return [f"{where}: not a URI: {value!r}"]
    authority = AUTHORITY.match(value)
    if authority and authority[1] != authority[1].lower():
        return [f"{where}: authority not in lowercase: {value!r}"]
    return []


def timestamp_problems(value, where):
    if not isinstance(value, str) or not TIMESTAMP.fullmatch(value):
        return [f"{where}: not an RFC 3339 UTC timestamp: {value!r}"]
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return [f"{where}: not a date and time: {value!r}"]
    return []


def extension(name):
    """SLSA: extension fields are <vendor>_<fieldname>; standard names have no underscore."""
    return re.fullmatch(r"[A-Za-z0-9]+_[A-Za-z0-9]+", name) is not None


def unknown(obj, known, where, extensions=True):
    return [
        f"{where}: unknown field {k!r}"
        for k in obj
        if k not in known and not (extensions and extension(k))
    ]


def digest_problems(digest, where):
    if not isinstance(digest, dict) or not digest:
        return [f"{where}: a DigestSet is a non-empty object"]
    out = []
    for algorithm, value in digest.items():
        if algorithm not in HEX_LENGTHS:
            out.append(f"{where}: unknown algorithm {algorithm!r}")
        elif not (
            isinstance(value, str)
            and re.fullmatch(r"[0-9a-f]+", value)
            and len(value) in HEX_LENGTHS[algorithm]
        ):
            out.append(f"{where}.{algorithm}: not lowercase hex of its length: {value!r}")
    return out


def descriptor_problems(rd, where):
    if not isinstance(rd, dict):
        return [f"{where}: a ResourceDescriptor is an object"]
    out = unknown(rd, DESCRIPTOR_FIELDS, where, extensions=False)
    if not {"uri", "digest", "content"} & set(rd):
        out.append(f"{where}: needs one of uri, digest, content")
    for key in ("name", "mediaType"):
        if key in rd and not isinstance(rd[key], str):
            out.append(f"{where}.{key}: not a string")
    for key in ("uri", "downloadLocation"):
        if key in rd:
            out += uri_problems(rd[key], f"{where}.{key}")
    if "digest" in rd:
        out += digest_problems(rd["digest"], f"{where}.digest")
    if "content" in rd:
        try:
            base64.b64decode(rd["content"], validate=True)
        except (TypeError, ValueError):
            out.append(f"{where}.content: not base64")
    if "annotations" in rd and not isinstance(rd["annotations"], dict):
        out.append(f"{where}.annotations: not an object")
    return out


def descriptors_problems(items, where):
    if not isinstance(items, list):
        return [f"{where}: not an array"]
    return [p for i, rd in enumerate(items) for p in descriptor_problems(rd, f"{where}[{i}]")]


def object_problems(obj, where, required, optional):
    """The shape shared by every SLSA object: an object with its required fields, and no
    field that is neither a known one nor an extension."""
    if not isinstance(obj, dict):
        return [f"{where}: not an object"]
    out = [f"{where}: missing {k}" for k in required if k not in obj]
    return out + unknown(obj, set(required) | set(optional), where)


def slsa_problems(predicate):
    where = "predicate"
    out = object_problems(predicate, where, ["buildDefinition", "runDetails"], [])
    if out:
        return out
    bd, rd = predicate["buildDefinition"], predicate["runDetails"]
    where = "predicate.buildDefinition"
    out += object_problems(
        bd,
        where,
        ["buildType", "externalParameters"],
        ["internalParameters", "resolvedDependencies"],
    )
    if isinstance(bd, dict):
        out += uri_problems(bd.get("buildType"), f"{where}.buildType")
        for key in ("externalParameters", "internalParameters"):
            if key in bd and not isinstance(bd[key], dict):
                out.append(f"{where}.{key}: not an object")
        if "resolvedDependencies" in bd:
            out += descriptors_problems(bd["resolvedDependencies"], f"{where}.resolvedDependencies")
    where = "predicate.runDetails"
    out += object_problems(rd, where, ["builder"], ["metadata", "byproducts"])
    if not isinstance(rd, dict):
        return out
    builder = rd.get("builder")
    out += object_problems(builder, f"{where}.builder", ["id"], ["version", "builderDependencies"])
    if isinstance(builder, dict):
        out += uri_problems(builder.get("id"), f"{where}.builder.id")
        version = builder.get("version", {})
        if not isinstance(version, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in version.items()
        ):
            out.append(f"{where}.builder.version: not a map of strings")
        if "builderDependencies" in builder:
            out += descriptors_problems(
                builder["builderDependencies"], f"{where}.builder.builderDependencies"
            )
    if "metadata" in rd:
        metadata = rd["metadata"]
        out += object_problems(
            metadata, f"{where}.metadata", [], ["invocationId", "startedOn", "finishedOn"]
        )
        if isinstance(metadata, dict):
            if "invocationId" in metadata and not isinstance(metadata["invocationId"], str):
                out.append(f"{where}.metadata.invocationId: not a string")
            for key in ("startedOn", "finishedOn"):
                if key in metadata:
                    out += timestamp_problems(metadata[key], f"{where}.metadata.{key}")
    if "byproducts" in rd:
        out += descriptors_problems(rd["byproducts"], f"{where}.byproducts")
    return out


def problems(statement, data):
    """What is wrong with `statement` as the provenance of the checkpoint bytes `data`."""
    if not isinstance(statement, dict):
        return ["the statement is not an object"]
    out = [f"missing {k}" for k in ("_type", "subject", "predicateType") if k not in statement]
    out += unknown(statement, STATEMENT_FIELDS, "statement", extensions=False)
    if statement.get("_type") != "https://in-toto.io/Statement/v1":
        out.append(f"_type: {statement.get('_type')!r}")
    if statement.get("predicateType") != "https://slsa.dev/provenance/v1":
        out.append(f"predicateType: {statement.get('predicateType')!r}")
    subject = statement.get("subject")
    if not isinstance(subject, list) or not subject:
        out.append("subject: not a non-empty array")
    else:
        out += descriptors_problems(subject, "subject")
        if not all(isinstance(s, dict) and "digest" in s for s in subject):
            out.append("subject: every element needs a digest")
        elif subject[0]["digest"] != {"sha256": hashlib.sha256(data).hexdigest()}:
            out.append("subject: the digest is not the sha256 of the checkpoint")
    out += slsa_problems(statement.get("predicate"))
    try:
        json.dumps(statement, allow_nan=False)
    except (TypeError, ValueError) as e:
        out.append(f"not JSON: {e}")
    return out


# --- fixtures ----------------------------------------------------------------------


def read(project, path=MODEL):
    data = (project / path).read_bytes()
    W, meta = checkpoint.parse(data, path)
    return data, W, meta


SCHEMA1 = Path(__file__).parent / "data/checkpoint-schema1.safetensors"


def schema1(code):
    """A checkpoint of the first format (code named by a commit) with this code record."""
    W, meta = checkpoint.read(str(SCHEMA1))
    data = checkpoint.to_bytes(W, {**meta, "code": code})
    return data, checkpoint.parse(data, MODEL)[1]


def recorded_code(meta):
    return {p: b for link in meta["lineage"] for p, b in link["code"].items()}


def files_of(statement):
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    return [d for d in deps if "sha256" in d["digest"]]


def dependency(statement, name):
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    found = [d for d in deps if d.get("name") == name]
    assert len(found) == 1, (name, deps)
    return found[0]


@pytest.fixture
def model(trained_project):
    data, _, meta = read(trained_project)
    return data, meta


# --- the checker ---------------------------------------------------------------------


def test_the_statement_of_a_trained_model_meets_both_specs(model):
    data, meta = model
    s = provenance.statement(MODEL, data, meta)
    assert problems(s, data) == []
    assert s["subject"] == [{"name": MODEL, "digest": {"sha256": hashlib.sha256(data).hexdigest()}}]


def _set(path, value):
    def mutate(s):
        *parents, last = path
        for key in parents:
            s = s[key]
        s[last] = value

    return mutate


def _delete(path):
    def mutate(s):
        *parents, last = path
        for key in parents:
            s = s[key]
        del s[last]

    return mutate


BD = ("predicate", "buildDefinition")
RUN = ("predicate", "runDetails")


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (_set(("_type",), "https://in-toto.io/Statement/v0.1"), "_type"),
        (_set(("predicateType",), "https://slsa.dev/provenance/v0.2"), "predicateType"),
        (_set(("extra",), 1), "unknown field 'extra'"),
        (_delete(("subject", 0, "digest")), "needs one of uri, digest, content"),
        (_set(("subject", 0, "digest", "sha256"), "0" * 64), "not the sha256"),
        (_set(("subject", 0, "digest", "sha256"), "AB" * 32), "not lowercase hex"),
        (_set((*BD, "resolvedDependencies", 0, "digest", "md5"), "0" * 31), "not lowercase hex"),
        (_set((*BD, "resolvedDependencies", 0, "digest", "crc32"), "0" * 8), "unknown algorithm"),
        (_set((*BD, "resolvedDependencies", 0), {"name": "only a name"}), "needs one of"),
        (_set((*BD, "buildType"), "Not a URI"), "not a URI"),
        (_delete((*BD, "externalParameters")), "missing externalParameters"),
        (_set((*BD, "configSource"), {}), "unknown field 'configSource'"),
        (_delete((*RUN, "builder", "id")), "missing id"),
        (_set((*RUN, "metadata"), {"startedOn": "2024-01-02 03:04:05"}), "RFC 3339"),
        (_set((*RUN, "metadata"), {"finishedOn": "2024-13-02T03:04:05Z"}), "not a date"),
    ],
)
def test_the_checker_fails_what_the_specs_forbid(model, mutate, expected):
    data, meta = model
    s = copy.deepcopy(provenance.statement(MODEL, data, meta))
    mutate(s)
    found = problems(s, data)
    assert any(expected in p for p in found), found


def test_the_checker_accepts_what_the_specs_allow(model):
    data, meta = model
    s = provenance.statement(MODEL, data, meta)
    s["predicate"]["runDetails"]["metadata"] = {
        "invocationId": "x",
        "startedOn": "1985-04-12T23:20:50.52Z",
        "finishedOn": "1985-04-12T23:21:00Z",
    }
    s["predicate"]["runDetails"]["builder"]["version"] = {"dvc": "3.67.1"}
    s["subject"][0]["uri"] = "pkg:generic/model"
    s["subject"][0]["content"] = base64.b64encode(b"W").decode()
    assert problems(s, data) == []


# --- what the statement says ---------------------------------------------------------


def test_params_files_and_versions_are_those_the_checkpoint_recorded(model):
    data, meta = model
    s = provenance.statement(MODEL, data, meta)
    bd = s["predicate"]["buildDefinition"]
    chain = meta["lineage"]
    assert bd["externalParameters"] == {
        "data": chain[0]["params"]["data"],
        "split": chain[1]["params"]["split"],
        "model": chain[1]["params"]["model"],
        "train": chain[2]["params"]["train"],
    }
    assert bd["internalParameters"] == {"versions": meta["versions"]}
    names = bd["externalParameters"]["data"]["names"]
    expected = [names, artifacts.PAIRS, artifacts.VOCAB, artifacts.COUNTS, artifacts.SPLIT]
    assert [d["name"] for d in files_of(s)] == expected
    code = [d for d in bd["resolvedDependencies"] if "gitBlob" in d["digest"]]
    assert {d["name"]: d["digest"]["gitBlob"] for d in code} == recorded_code(meta)
    assert len(code) + len(expected) == len(bd["resolvedDependencies"])  # nothing else
    train_only = dependency(s, "stages/train.py")["annotations"]
    assert train_only == {"bigram_usedBy": ["train"]}
    shared = dependency(s, "bigram/console.py")["annotations"]
    assert shared == {"bigram_usedBy": ["prepare", "split", "train"]}
    for d in files_of(s):
        md5 = next(
            link[k][d["name"]]
            for link in chain
            for k in ("inputs", "outputs")
            if d["name"] in link[k]
        )
        sha256 = next(link["sha256"][d["name"]] for link in chain if d["name"] in link["sha256"])
        assert d["digest"] == {"md5": md5, "sha256": sha256}
    assert dependency(s, artifacts.COUNTS)["annotations"] == {"bigram_producedBy": "split"}
    assert dependency(s, artifacts.VOCAB)["annotations"] == {"bigram_producedBy": "prepare"}
    assert "annotations" not in dependency(s, names)  # an input, made by no stage


def test_the_digests_are_of_the_files(trained_project, model):
    data, meta = model
    s = provenance.statement(MODEL, data, meta)
    for d in s["predicate"]["buildDefinition"]["resolvedDependencies"]:
        content = (trained_project / d["name"]).read_bytes()
        if "gitBlob" in d["digest"]:  # git's own id of the content
            assert (
                d["digest"]["gitBlob"]
                == sh(["git", "hash-object", d["name"]], trained_project).stdout.strip()
            )
            continue
        assert d["digest"]["sha256"] == hashlib.sha256(content).hexdigest()
        assert d["digest"]["md5"] == hashlib.md5(content).hexdigest()
    (previous,) = s["predicate"]["runDetails"]["byproducts"]
    content = (trained_project / previous["name"]).read_bytes()
    assert previous["digest"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert previous["name"] == meta["previous"]["path"]


def test_the_first_checkpoint_has_no_byproducts(trained_project):
    path = artifacts.checkpoint_path(0)
    data, _, meta = read(trained_project, path)
    s = provenance.statement(path, data, meta)
    assert problems(s, data) == []
    assert "byproducts" not in s["predicate"]["runDetails"]


def test_without_a_commit_the_code_is_still_named_by_content(model):
    data, meta = model  # the stages ran outside git: no commit holds the code
    s = provenance.statement(MODEL, data, meta, "https://example.com/o/r.git")
    bd = s["predicate"]["buildDefinition"]
    assert not [d for d in bd["resolvedDependencies"] if "gitCommit" in d["digest"]]
    assert "example.com" not in json.dumps(s)
    assert dependency(s, "stages/train.py")["digest"] == {
        "gitBlob": meta["lineage"][2]["code"]["stages/train.py"]
    }
    assert set(bd) == {
        "buildType",
        "externalParameters",
        "internalParameters",
        "resolvedDependencies",
    }  # no field outside SLSA's schema


def test_a_commit_holding_the_code_is_a_git_dependency(model):
    data, meta = model
    commit = "a" * 40
    s = provenance.statement(MODEL, data, meta, "https://example.com/o/r.git", commit)
    assert problems(s, data) == []
    assert dependency(s, "code") == {
        "name": "code",
        "uri": f"git+https://example.com/o/r.git@{commit}",
        "digest": {"gitCommit": commit},
    }
    bare = provenance.statement(MODEL, data, meta, commit=commit)
    assert problems(bare, data) == []
    assert dependency(bare, "code") == {"name": "code", "digest": {"gitCommit": commit}}


def test_with_a_public_dvc_remote_each_data_file_says_where_dvc_keeps_it(model):
    data, meta = model
    s = provenance.statement(MODEL, data, meta, data_uri="s3://bucket/dvcstore/")
    assert problems(s, data) == []
    for d in files_of(s):
        md5 = d["digest"]["md5"]  # DVC 3's remote layout: files/md5/<2 hex>/<30 hex>
        assert d["uri"] == f"s3://bucket/dvcstore/files/md5/{md5[:2]}/{md5[2:]}"
    assert all("uri" not in d for d in files_of(provenance.statement(MODEL, data, meta)))


@pytest.mark.slow
def test_the_default_dvc_remote_is_published_only_when_it_is_not_a_local_path(trained_repo):
    lineage = ["lineage", "--provenance", MODEL]
    sh([sys.executable, "-m", "dvc", "remote", "add", "-d", "store", "s3://bucket/dvcstore"],
       trained_repo)  # fmt: skip
    uris = {d.get("uri") for d in files_of(json.loads(bigram(trained_repo, *lineage).stdout))}
    assert all(u and u.startswith("s3://bucket/dvcstore/files/md5/") for u in uris)
    sh([sys.executable, "-m", "dvc", "remote", "modify", "store", "url", "/srv/dvc"], trained_repo)
    statement = json.loads(bigram(trained_repo, *lineage).stdout)
    assert all("uri" not in d for d in files_of(statement))  # a machine path: not published


def test_a_schema_1_checkpoint_names_a_clean_commit_and_says_why_not_a_dirty_one():
    commit = "b" * 40
    data, meta = schema1({"commit": commit, "dirty": False})
    s = provenance.statement(MODEL, data, meta, "https://example.com/o/r.git")
    assert problems(s, data) == []
    assert dependency(s, "code")["digest"] == {"gitCommit": commit}
    data, meta = schema1({"commit": commit, "dirty": True})
    s = provenance.statement(MODEL, data, meta, "https://example.com/o/r.git")
    assert problems(s, data) == []
    bd = s["predicate"]["buildDefinition"]
    assert all(d.get("name") != "code" for d in bd["resolvedDependencies"])
    assert "example.com" not in json.dumps(s)
    assert bd["internalParameters"]["codeUnidentified"] == (
        f"trained from uncommitted changes on top of {commit}"
    )


def test_no_machine_path_or_time_in_the_statement(trained_project, model):
    data, meta = model
    absolute = str(trained_project / MODEL)
    s = provenance.statement(absolute, data, meta)
    assert s["subject"][0]["name"] == "model.safetensors"
    assert provenance.statement("../x/" + MODEL, data, meta)["subject"][0]["name"] == (
        "model.safetensors"
    )
    assert provenance.statement("./" + MODEL, data, meta)["subject"][0]["name"] == MODEL
    text = json.dumps(s)
    assert str(trained_project) not in text and str(Path.home()) not in text
    assert "metadata" not in s["predicate"]["runDetails"]


@pytest.mark.parametrize(
    "remote, public",
    [
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://user:s3cret@GitHub.com/o/r.git?token=s3cret#x", "https://github.com/o/r.git"),
        ("https://ghp_s3cret@github.com:8443/o/r", "https://github.com:8443/o/r"),
        ("git@github.com:o/r.git", "ssh://github.com/o/r.git"),
        ("ssh://git:s3cret@Example.org/srv/r.git", "ssh://example.org/srv/r.git"),
        ("/srv/git/r.git", None),
        ("../r", None),
        ("file:///srv/git/r.git", None),
        ("C:\\repos\\r", None),
        ("https://host:notaport/r", None),
    ],
)
def test_a_remote_is_published_without_credentials(remote, public):
    assert provenance.public_uri(remote) == public


# --- the command ---------------------------------------------------------------------


def test_the_command_prints_the_statement_the_same_every_time(trained_project, model):
    data, meta = model
    first = bigram(trained_project, "lineage", "--provenance", MODEL)
    second = bigram(trained_project, "lineage", "--provenance", MODEL)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    statement = json.loads(first.stdout)
    assert statement == provenance.statement(MODEL, data, meta)
    assert problems(statement, data) == []
    expected = json.dumps(statement, indent=2, sort_keys=True) + "\n"
    assert first.stdout == expected
    # --json changes nothing: the statement is JSON
    assert (
        bigram(trained_project, "lineage", "--json", "--provenance", MODEL).stdout == first.stdout
    )


def test_the_command_refuses_provenance_with_verify(trained_project):
    r = bigram(trained_project, "lineage", "--provenance", "--verify", MODEL)
    assert r.returncode == 2
    assert "not allowed with argument" in r.stderr and "Traceback" not in r.stderr


def test_the_command_reads_a_revision_and_publishes_the_remote(trained_project):
    """--rev reads the checkpoint as committed; origin's URL is given without its token."""
    repo = trained_project  # its outputs committed to git: read without a DVC cache
    init_git(repo)
    commit_all(repo, "a run")
    sh(["git", "remote", "add", "origin", "https://bot:s3cret@example.com/o/r.git"], repo)
    data = (repo / MODEL).read_bytes()
    forged_path = "models/copy.safetensors"
    (repo / forged_path).write_bytes(data)
    sh(["git", "add", forged_path], repo)
    sh(["git", "commit", "-qm", "a copy"], repo)
    commit = sh(["git", "rev-parse", "HEAD"], repo).stdout.strip()  # it holds the code
    (repo / forged_path).write_bytes(b"changed after the commit")
    r = bigram(repo, "lineage", "--provenance", "--rev", "HEAD", forged_path)
    assert r.returncode == 0, r.stderr
    statement = json.loads(r.stdout)
    assert problems(statement, data) == []
    assert "s3cret" not in r.stdout
    assert dependency(statement, "code")["uri"] == f"git+https://example.com/o/r.git@{commit}"
