"""AES-256-GCM encryption of identity documents at rest, with key ids so keys can rotate.

A stored blob is ``MAGIC | len(key id) | key id | 12-byte nonce | ciphertext+tag``. The key id is
also kept with the document's row; new files use the active key, older files keep decrypting with
the key they name until ``reencrypt`` moves them to the active one. The associated data binds a
blob to its document id, so a file copied onto another document's key does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from halobuzz.config import KycSettings
from halobuzz.core.security import local_secret

MAGIC = b"HBKYC1"
NONCE_BYTES = 12
LOCAL_KEY_ID = "local"


class KeyConfigError(ValueError):
    """KYC_ENCRYPTION_KEYS is malformed (said in the message)."""


class DecryptionError(Exception):
    """A blob that is not ours, names an unknown key, or fails authentication (wrong key, tampered)."""


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    active: str

    @classmethod
    def parse(cls, spec: str, active: str | None = None) -> Keyring:
        """``"id:base64key,id2:base64key"``; the active key is ``active`` or the last listed."""
        keys: dict[str, bytes] = {}
        last = ""
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id or len(key_id.encode()) > 64:
                raise KeyConfigError("KYC_ENCRYPTION_KEYS entries are 'id:base64key', ids up to 64 bytes")
            try:
                raw = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise KeyConfigError(f"KYC_ENCRYPTION_KEYS key {key_id!r} is not valid base64") from None
            if len(raw) != 32:
                raise KeyConfigError(
                    f"KYC_ENCRYPTION_KEYS key {key_id!r} must be 32 bytes (AES-256); "
                    "make one with: python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'"
                )
            keys[key_id] = raw
            last = key_id
        if not keys:
            raise KeyConfigError("KYC_ENCRYPTION_KEYS holds no key")
        chosen = active or last
        if chosen not in keys:
            raise KeyConfigError(f"KYC_ACTIVE_KEY_ID {chosen!r} is not one of the keys in KYC_ENCRYPTION_KEYS")
        return cls(keys, chosen)

    @classmethod
    def from_settings(cls, settings: KycSettings, *, data_dir: Path, production: bool) -> Keyring | None:
        """The configured keys; outside production without keys, one kept under the data directory.
        None in production without keys (uploads are then refused)."""
        if settings.encryption_keys is not None:
            return cls.parse(settings.encryption_keys.get_secret_value(), settings.active_key_id)
        if production:
            return None
        secret = local_secret(data_dir / "secrets", "kyc")
        return cls({LOCAL_KEY_ID: hashlib.sha256(secret.encode()).digest()}, LOCAL_KEY_ID)

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> tuple[str, bytes]:
        """(key id, blob) under the active key."""
        key_id = self.active
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[key_id]).encrypt(nonce, plaintext, aad)
        kid = key_id.encode()
        return key_id, MAGIC + bytes([len(kid)]) + kid + nonce + sealed

    def decrypt(self, blob: bytes, *, aad: bytes) -> bytes:
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 1:
            raise DecryptionError("not an encrypted KYC document")
        at = len(MAGIC)
        size = blob[at]
        key_id = blob[at + 1 : at + 1 + size].decode(errors="replace")
        body = blob[at + 1 + size :]
        key = self.keys.get(key_id)
        if key is None:
            raise DecryptionError(f"the document is encrypted with key {key_id!r}, which is not configured")
        if len(body) < NONCE_BYTES + 16:
            raise DecryptionError("the encrypted document is truncated")
        try:
            return AESGCM(key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionError("the document does not decrypt with its key (wrong key or altered file)") from None

    @staticmethod
    def key_id_of(blob: bytes) -> str | None:
        if not blob.startswith(MAGIC) or len(blob) <= len(MAGIC):
            return None
        size = blob[len(MAGIC)]
        return blob[len(MAGIC) + 1 : len(MAGIC) + 1 + size].decode(errors="replace")
