"""Signed, expiring playback tokens (URL-safe, carried in the path so relative URIs keep them).

Live streams: ``<expiry unix>.<hmac>``; recordings the same under their own scope; radio
listeners ``<expiry>.<listener id>.<hmac>`` (the listener id counts distinct listeners).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

from halobuzz.config import Settings


def playback_secret(settings: Settings) -> bytes:
    """The HMAC key; derived from the JWT secret unless MEDIA_PLAYBACK_SECRET is set."""
    configured = settings.media.playback_secret
    if configured is not None:
        return configured.get_secret_value().encode()
    base = settings.auth.jwt_secret.get_secret_value().encode()
    return hmac.new(base, b"halobuzz-media-playback", hashlib.sha256).digest()


def _mac(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def _message(scope: str, subject: uuid.UUID, expires: int, listener: str = "") -> str:
    base = f"{subject}.{expires}" if not scope else f"{scope}:{subject}.{expires}"
    return f"{base}.{listener}" if listener else base


def sign(secret: bytes, stream_id: uuid.UUID, expires: int, *, scope: str = "") -> str:
    """A token granting playback of ``stream_id`` (or a recording, ``scope="vod"``) until ``expires``."""
    return f"{expires}.{_mac(secret, _message(scope, stream_id, expires))}"


def verify(secret: bytes, stream_id: uuid.UUID, token: str, *, now: float, scope: str = "") -> bool:
    """True when ``token`` was signed for ``stream_id`` in ``scope`` and has not expired."""
    head, _, mac = token.partition(".")
    if not head.isdigit() or not mac or "." in mac:
        return False
    expires = int(head)
    if expires < now:
        return False
    return hmac.compare_digest(mac, _mac(secret, _message(scope, stream_id, expires)))


def sign_listener(secret: bytes, channel_id: uuid.UUID, expires: int, listener: str | None = None) -> str:
    """A radio listener's token: playback of the channel plus an id that counts the listener once."""
    lid = listener or secrets.token_urlsafe(9)
    return f"{expires}.{lid}.{_mac(secret, _message('radio', channel_id, expires, lid))}"


def verify_listener(secret: bytes, channel_id: uuid.UUID, token: str, *, now: float) -> str | None:
    """The listener id of a valid, unexpired radio token; None otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1]:
        return None
    expires, lid, mac = int(parts[0]), parts[1], parts[2]
    if expires < now:
        return None
    if not hmac.compare_digest(mac, _mac(secret, _message("radio", channel_id, expires, lid))):
        return None
    return lid
