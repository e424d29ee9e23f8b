"""Signed provenance: the in-toto Statement in a DSSE envelope, signed with an ed25519 key.

DSSE (github.com/secure-systems-lab/dsse) is the envelope in-toto attestations travel in,
and what `cosign verify-blob-attestation` and GUAC read. The signature covers
PAE(payloadType, payload) = "DSSEv1 <len> <type> <len> <payload>", so neither the type
nor the bytes of the statement can change without breaking it.

Keys are plain PEM files that openssl makes (docs/auditing.md):

    openssl genpkey -algorithm ed25519 -out bigram.key        # private: keep it
    openssl pkey -in bigram.key -pubout -out bigram.pub        # public: give it out

An envelope is untrusted data: it is parsed with bounds, and its statement is used only
after its signature verified with the key the user names.
"""

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from bigram import fsio
from bigram.console import PipelineError

PAYLOAD_TYPE = "application/vnd.in-toto+json"
ENVELOPE_LIMIT = 4 * 2**20  # a statement names a few dozen files: far below this
KEY_LIMIT = 64 * 1024


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _private_key(path: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = fsio.read_bounded(path, KEY_LIMIT, "name an ed25519 private key in PEM")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise PipelineError(
            f"{path} is not an unencrypted PEM private key; make one with "
            "`openssl genpkey -algorithm ed25519 -out bigram.key`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PipelineError(
            f"{path} is not an ed25519 key; make one with `openssl genpkey -algorithm ed25519`"
        )
    return key


def _public_key(path: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = fsio.read_bounded(path, KEY_LIMIT, "name an ed25519 public key in PEM")
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError):
        raise PipelineError(
            f"{path} is not a PEM public key; make it from the private key with "
            "`openssl pkey -in bigram.key -pubout -out bigram.pub`"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise PipelineError(f"{path} is not an ed25519 public key")
    return key


def keyid(public_key: Any) -> str:
    """The key's id: the sha256 of its DER SubjectPublicKeyInfo, as hex."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def sign(statement: dict[str, Any], key_path: str) -> dict[str, Any]:
    """The statement in a DSSE envelope signed with the private key at `key_path`."""
    key = _private_key(key_path)
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {"keyid": keyid(key.public_key()), "sig": base64.b64encode(signature).decode()}
        ],
    }


def verify(envelope_path: str, key_path: str, data: bytes) -> tuple[dict[str, Any], str]:
    """The statement of the envelope at `envelope_path` once a signature in it verifies
    with the public key at `key_path` and its subject is `data`'s sha256; and a line that
    says so. Raises PipelineError naming what does not hold."""
    from cryptography.exceptions import InvalidSignature

    key = _public_key(key_path)
    raw = fsio.read_bounded(envelope_path, ENVELOPE_LIMIT, "name a DSSE envelope (JSON)")
    bad = f"{envelope_path} is not a DSSE envelope (JSON with payloadType, payload, signatures)"
    try:
        envelope = json.loads(raw)
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise PipelineError(bad) from None
    if not isinstance(payload_type, str) or not signatures:
        raise PipelineError(bad)
    for signature in signatures:
        try:
            key.verify(signature, pae(payload_type, payload))
            break
        except InvalidSignature:
            continue
    else:
        raise PipelineError(
            f"{envelope_path}: no signature verifies with {key_path}: signed with another "
            "key, or the envelope was changed after signing"
        )
    if payload_type != PAYLOAD_TYPE:
        raise PipelineError(f"{envelope_path}: payloadType {payload_type!r}, not in-toto's")
    try:
        statement = json.loads(payload)
        digests = [s["digest"]["sha256"] for s in statement["subject"]]
    except (ValueError, KeyError, TypeError):
        raise PipelineError(f"{envelope_path}: its payload is not an in-toto Statement") from None
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 not in digests:
        raise PipelineError(
            f"{envelope_path} is signed, but for another file: its subject's sha256 is "
            f"{', '.join(d[:12] for d in digests)}…, this file's {sha256[:12]}…"
        )
    return statement, (
        f"signature: verified with {Path(key_path).name} (key {keyid(key)[:12]}); the "
        f"signed statement's subject is this file (sha256 {sha256[:12]}…)"
    )
