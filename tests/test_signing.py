"""Signed provenance: `bigram lineage --provenance --sign KEY` writes a DSSE envelope that an
independent implementation (securesystemslib's) verifies, and `--verify --signature ENV
--key PUB` checks the signature, the subject and the lineage in one run."""

import base64
import copy
import json
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from bigram import signing
from tests.conftest import bigram, error_line

MODEL = "models/model.safetensors"


def keypair(d, name):
    """An ed25519 key pair as openssl writes it (PKCS#8 and SubjectPublicKeyInfo PEM)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (d / f"{name}.key").write_bytes(private)
    (d / f"{name}.pub").write_bytes(public)
    return key


@pytest.fixture
def signed(trained_project):
    key = keypair(trained_project, "bigram")
    r = bigram(trained_project, "lineage", "--provenance", "--sign", "bigram.key", MODEL)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1  # one envelope per line, as .intoto.jsonl
    (trained_project / "model.intoto.jsonl").write_text(r.stdout)
    return trained_project, key, json.loads(r.stdout)


def test_an_independent_dsse_implementation_verifies_the_envelope(signed):
    project, key, envelope = signed
    keyid = envelope["signatures"][0]["keyid"]
    public = SSlibKey.from_crypto(key.public_key(), keyid=keyid)
    Envelope.from_dict(copy.deepcopy(envelope)).verify([public], 1)  # from_dict consumes it
    other = SSlibKey.from_crypto(Ed25519PrivateKey.generate().public_key(), keyid=keyid)
    with pytest.raises(VerificationError):  # and the check can fail
        Envelope.from_dict(copy.deepcopy(envelope)).verify([other], 1)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    unsigned = json.loads(bigram(project, "lineage", "--provenance", MODEL).stdout)
    assert statement == unsigned  # the same statement as without --sign


def test_verify_says_the_signature_holds_then_verifies_the_lineage(signed):
    project, _, _ = signed
    r = bigram(project, "lineage", "--verify", "--signature", "model.intoto.jsonl",
               "--key", "bigram.pub", MODEL)  # fmt: skip
    first, *rest = r.stdout.splitlines()
    assert first.startswith("signature: verified with bigram.pub (key ")
    # This project copy is not a DVC repository: the lineage check then says so.
    assert r.returncode == 1 and rest == [
        "dvc.lock: missing or not a DVC lock file in the workspace; run `dvc repro`"
    ]


@pytest.mark.slow
def test_verify_checks_signature_subject_and_lineage_in_one_run(trained_repo):
    keypair(trained_repo, "bigram")
    r = bigram(trained_repo, "lineage", "--provenance", "--sign", "bigram.key", MODEL)
    (trained_repo / "model.intoto.jsonl").write_text(r.stdout)
    r = bigram(trained_repo, "lineage", "--verify", "--signature", "model.intoto.jsonl",
               "--key", "bigram.pub", MODEL)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    first, *rest = r.stdout.splitlines()
    assert first.startswith("signature: verified with bigram.pub (key ")
    assert rest[-1].startswith(f"verified {MODEL}")


def test_another_key_another_file_or_a_changed_envelope_is_refused(signed):
    project, _, envelope = signed
    keypair(project, "other")
    args = ["lineage", "--verify", "--signature", "model.intoto.jsonl"]
    r = bigram(project, *args, "--key", "other.pub", MODEL)
    assert error_line(r) == (
        f"{project / 'model.intoto.jsonl'}: no signature verifies with "
        f"{project / 'other.pub'}: signed with another key, or the envelope was changed "
        "after signing"
    )
    r = bigram(project, *args, "--key", "bigram.pub", "models/checkpoints/step_000050.safetensors")
    assert "is signed, but for another file: its subject's sha256 is" in error_line(r)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["name"] = "models/evil.safetensors"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (project / "model.intoto.jsonl").write_text(json.dumps(envelope))
    r = bigram(project, *args, "--key", "bigram.pub", MODEL)
    assert "no signature verifies with" in error_line(r)


def test_keys_and_envelopes_that_are_not_are_one_line(signed, tmp_path):
    project, _, _ = signed
    (project / "junk.pem").write_text("not a key\n")
    r = bigram(project, "lineage", "--provenance", "--sign", "junk.pem", MODEL)
    assert error_line(r).endswith(
        "junk.pem is not an unencrypted PEM private key; make one with "
        "`openssl genpkey -algorithm ed25519 -out bigram.key`"
    )
    r = bigram(project, "lineage", "--verify", "--signature", "junk.pem", "--key", "bigram.pub",
               MODEL)  # fmt: skip
    assert error_line(r).endswith(
        "junk.pem is not a DSSE envelope (JSON with payloadType, payload, signatures)"
    )
    r = bigram(project, "lineage", "--verify", "--signature", "model.intoto.jsonl", MODEL)
    assert r.returncode == 2 and "--signature and --key go together, with --verify" in r.stderr


def test_pae_is_dsses_encoding():
    # The DSSE spec's example: PAE("http://example.com/HelloWorld", "hello world").
    assert signing.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cosign") is None, reason="cosign is not installed")
def test_cosign_verifies_the_envelope_offline(signed):
    project, _, _ = signed
    cmd = ["cosign", "verify-blob-attestation", "--key", "bigram.pub", "--type",
           "slsaprovenance1", "--insecure-ignore-tlog=true", "--signature",
           "model.intoto.jsonl"]  # fmt: skip
    ok = subprocess.run([*cmd, MODEL], cwd=project, capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified OK" in ok.stderr, ok.stderr
    other = subprocess.run(
        [*cmd, "models/checkpoints/step_000050.safetensors"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert other.returncode != 0
