"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291).

pywebpush encrypts the payload for the subscription's keys; py_vapid signs the ES256 JWT whose
``aud`` is the push service's origin. The request goes out with httpx so that every channel
shares one timeout and retry policy.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException

from halobuzz.config import Settings
from halobuzz.core.errors import InvalidInput
from halobuzz.notifications.channels.base import Outgoing, Result, http_result, network_result

log = structlog.get_logger(__name__)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeys:
    vapid: Vapid02
    public_key: str  # base64url of the uncompressed P-256 point: the browser's applicationServerKey


def _from_text(text: str) -> Vapid02:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return Vapid02.from_pem(text.encode())
    return Vapid02.from_raw(text.encode())


def _generated(directory: Path) -> str:
    """A P-256 key kept as ``vapid.pem`` under ``directory`` (created once, owner-readable only)."""
    path = directory / "vapid.pem"
    try:
        return path.read_text()
    except FileNotFoundError:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text()
        try:
            os.write(fd, pem)
        finally:
            os.close(fd)
        return pem.decode()


def load_vapid(settings: Settings) -> VapidKeys | None:
    """The VAPID keys from settings; generated under the data dir outside production; None in
    production without ``NOTIFICATIONS_VAPID_PRIVATE_KEY`` (web push is then off)."""
    configured = settings.notifications.vapid_private_key
    if configured is not None:
        vapid = _from_text(configured.get_secret_value())
    elif settings.env != "production":
        vapid = _from_text(_generated(settings.data_dir / "secrets"))
    else:
        return None
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return VapidKeys(vapid, _b64url(raw))


def check_subscription(*, endpoint: str, p256dh: str, auth: str, production: bool) -> None:
    """``InvalidInput`` unless this is a usable subscription: https endpoint (http only to this
    machine outside production), a P-256 public key and a 16-byte auth secret."""
    parts = urlsplit(endpoint)
    local = parts.scheme == "http" and parts.hostname in LOCAL_HOSTS and not production
    if not ((parts.scheme == "https" and parts.hostname) or local):
        raise InvalidInput("endpoint must be an https URL of a push service", code="invalid_push_endpoint")
    try:
        key = _unb64url(p256dh)
        secret = _unb64url(auth)
    except ValueError:
        raise InvalidInput("keys must be base64url", code="invalid_push_keys") from None
    if len(key) != 65 or key[0] != 4 or len(secret) != 16:
        raise InvalidInput(
            "keys.p256dh must be an uncompressed P-256 point and keys.auth 16 bytes (base64url)",
            code="invalid_push_keys",
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    except ValueError:
        raise InvalidInput("keys.p256dh is not a point on P-256", code="invalid_push_keys") from None


class WebPushChannel:
    name = "web_push"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings.notifications
        self.keys = load_vapid(settings)
        self.http = http

    def available(self) -> bool:
        return self.keys is not None

    def payload(self, message: Outgoing) -> bytes:
        """What the service worker receives (JSON): the texts, a link and the notification."""
        return orjson.dumps(
            {
                "title": message.title,
                "body": message.body,
                "url": message.url,
                "type": message.type,
                "notification_id": str(message.notification_id) if message.notification_id else None,
                "data": message.data,
            }
        )

    async def send(self, message: Outgoing) -> Result:
        assert self.keys is not None and message.target is not None
        target = message.target
        try:
            encoded = WebPusher(
                {"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}}
            ).encode(self.payload(message), content_encoding="aes128gcm")
        except (WebPushException, ValueError) as exc:  # keys no longer usable
            return Result(ok=False, target_gone=True, error=f"cannot encrypt for this subscription: {exc}")
        parts = urlsplit(target.endpoint)
        claims = {
            "sub": self.settings.vapid_subject,
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(time.time()) + 12 * 3600,
        }
        headers = {
            **self.keys.vapid.sign(claims),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self.settings.web_push_ttl_seconds),
            "Urgency": "high" if message.type in ("stream_live", "raid_incoming") else "normal",
        }
        try:
            response = await self.http.post(target.endpoint, content=encoded["body"], headers=headers)
        except httpx.HTTPError as exc:
            return network_result(exc)
        if response.status_code in (404, 410):  # the subscription expired or was unsubscribed
            return Result(ok=False, status_code=response.status_code, target_gone=True, error="subscription gone")
        return http_result(response, provider_id=response.headers.get("location"))

    async def close(self) -> None:
        return None
