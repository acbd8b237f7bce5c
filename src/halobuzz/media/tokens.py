"""Signed, expiring HLS playback tokens: ``<stream id>.<expiry unix>.<hmac>`` (URL-safe)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from halobuzz.config import Settings


def playback_secret(settings: Settings) -> bytes:
    """The HMAC key; derived from the JWT secret unless MEDIA_PLAYBACK_SECRET is set."""
    configured = settings.media.playback_secret
    if configured is not None:
        return configured.get_secret_value().encode()
    base = settings.auth.jwt_secret.get_secret_value().encode()
    return hmac.new(base, b"halobuzz-media-playback", hashlib.sha256).digest()


def _mac(secret: bytes, stream_id: uuid.UUID, expires: int) -> str:
    digest = hmac.new(secret, f"{stream_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def sign(secret: bytes, stream_id: uuid.UUID, expires: int) -> str:
    """A token granting playback of ``stream_id`` until ``expires`` (unix seconds)."""
    return f"{expires}.{_mac(secret, stream_id, expires)}"


def verify(secret: bytes, stream_id: uuid.UUID, token: str, *, now: float) -> bool:
    """True when ``token`` was signed for ``stream_id`` and has not expired."""
    head, _, mac = token.partition(".")
    if not head.isdigit() or not mac:
        return False
    expires = int(head)
    if expires < now:
        return False
    return hmac.compare_digest(mac, _mac(secret, stream_id, expires))
