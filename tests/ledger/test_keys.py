"""API key helpers (``sluicegate.ledger._keys``) without a database.

Covers: the ``sg-<key_id>-<secret>`` form and its entropy, hashing, parsing malformed
keys, and namespace validation.
"""

from __future__ import annotations

import hashlib

import pytest

from sluicegate.ledger import _keys


def test_new_key_has_id_and_random_secret() -> None:
    key_id, key = _keys.new_key()
    other_id, other_key = _keys.new_key()
    prefix, embedded_id, secret = key.split("-", 2)
    assert prefix == "sg"
    assert embedded_id == key_id
    assert len(key_id) == 16
    assert len(secret) == 43  # 32 random bytes in URL-safe base64
    assert (key_id, key) != (other_id, other_key)


def test_key_id_of_parses_only_wellformed_keys() -> None:
    key_id, key = _keys.new_key()
    assert _keys.key_id_of(key) == key_id
    for malformed in ("", "sg", "sg-", f"sg-{key_id}", f"sg-{key_id}-", f"xx-{key_id}-secret", "sg-NOTHEX0000000000-secret"):
        assert _keys.key_id_of(malformed) is None


def test_hash_is_sha256_of_whole_key() -> None:
    _, key = _keys.new_key()
    assert _keys.hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert _keys.hashes_match(key, _keys.hash_key(key))
    assert not _keys.hashes_match(key + "x", _keys.hash_key(key))


@pytest.mark.parametrize("namespace", ["", "Team-A", "team_a", "-team", "team-", "a" * 64])
def test_check_namespace_rejects_invalid_names(namespace: str) -> None:
    with pytest.raises(ValueError, match="invalid namespace"):
        _keys.check_namespace(namespace)


def test_check_namespace_accepts_label() -> None:
    assert _keys.check_namespace("team-a1") == "team-a1"
