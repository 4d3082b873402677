"""API keys: generation, hashing and parsing, with no storage.

A key reads ``sg-<key_id>-<secret>``. The key id is 16 hex digits, so it never contains
the ``-`` separator and can be listed and revoked without the secret. The secret is
``secrets.token_urlsafe(32)``: 256 random bits. Only the SHA-256 of the whole key is
stored. A fast hash is enough here because the secret is random rather than chosen by a
person, so there is no dictionary to try against a stolen hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets

KEY_PREFIX = "sg"
_KEY_ID_BYTES = 8
_SECRET_BYTES = 32
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
# Kubernetes namespace names are RFC 1123 labels.
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def new_key() -> tuple[str, str]:
    """Return a new ``(key_id, key)`` pair."""
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    return key_id, f"{KEY_PREFIX}-{key_id}-{secrets.token_urlsafe(_SECRET_BYTES)}"


def hash_key(key: str) -> str:
    """Return the hex SHA-256 of a whole key, as stored in the ledger."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str | None:
    """Return the key id of a well-formed key, or None for anything else."""
    prefix, _, rest = key.partition("-")
    key_id, _, secret = rest.partition("-")
    if prefix != KEY_PREFIX or not _KEY_ID.match(key_id) or not secret:
        return None
    return key_id


def hashes_match(key: str, stored_hash: str) -> bool:
    """Compare a presented key with a stored hash in constant time."""
    return secrets.compare_digest(hash_key(key), stored_hash)


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is a valid Kubernetes namespace name, else raise ValueError."""
    if len(namespace) > 63 or not _NAMESPACE.match(namespace):
        raise ValueError(
            f"invalid namespace {namespace!r}: use lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (at most 63 characters)"
        )
    return namespace
