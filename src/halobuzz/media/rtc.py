"""Interactive guests: Agora RTC tokens (AccessToken2) and LiveKit access tokens (JWT).

Agora AccessToken2 ("007" + base64(zlib(signature + signing info))): little-endian packing,
strings as uint16 length + bytes, privileges as a uint16-keyed map of uint32 expiries; the signing
key is HMAC-SHA256(HMAC-SHA256(issue_ts, app certificate), salt). LiveKit: an HS256 JWT whose ``iss``
is the API key, ``sub`` the participant identity and ``video`` the room grant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
import zlib

import jwt as pyjwt

AGORA_VERSION = "007"
SERVICE_RTC = 1
PRIV_JOIN_CHANNEL = 1
PRIV_PUBLISH_AUDIO = 2
PRIV_PUBLISH_VIDEO = 3
PRIV_PUBLISH_DATA = 4


def _u16(value: int) -> bytes:
    return struct.pack("<H", value)


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def _string(value: bytes) -> bytes:
    return _u16(len(value)) + value


def agora_rtc_token(
    *,
    app_id: str,
    app_certificate: str,
    channel: str,
    uid: int | str,
    expire_seconds: int,
    privileges: dict[int, int],
    issue_ts: int | None = None,
    salt: int | None = None,
) -> str:
    """An AccessToken2 with the RTC service for ``channel``/``uid`` (``uid`` 0: any user).

    ``privileges`` maps privilege ids to their expiry in seconds from issue (0: the token's)."""
    if len(app_id) != 32 or len(app_certificate) != 32:
        raise ValueError("Agora app id and certificate are 32 hex characters")
    bytes.fromhex(app_id)
    bytes.fromhex(app_certificate)
    issued = int(time.time()) if issue_ts is None else issue_ts
    salt_value = secrets.randbelow(99_999_999) + 1 if salt is None else salt
    uid_bytes = b"" if uid in (0, "0", "") else str(uid).encode()
    privs = b"".join(_u16(k) + _u32(v) for k, v in sorted(privileges.items()))
    service = _u16(SERVICE_RTC) + _u16(len(privileges)) + privs + _string(channel.encode()) + _string(uid_bytes)
    info = _string(app_id.encode()) + _u32(issued) + _u32(expire_seconds) + _u32(salt_value) + _u16(1) + service
    key = hmac.new(_u32(issued), app_certificate.encode(), hashlib.sha256).digest()
    key = hmac.new(_u32(salt_value), key, hashlib.sha256).digest()
    signature = hmac.new(key, info, hashlib.sha256).digest()
    return AGORA_VERSION + base64.b64encode(zlib.compress(_string(signature) + info)).decode()


def agora_publisher_privileges(expire_seconds: int) -> dict[int, int]:
    """Join, and publish audio, video and data: what a host or co-host needs."""
    return {p: expire_seconds for p in (PRIV_JOIN_CHANNEL, PRIV_PUBLISH_AUDIO, PRIV_PUBLISH_VIDEO, PRIV_PUBLISH_DATA)}


def agora_uid(user_id: object) -> int:
    """A stable uint32 uid (1 … 2³²-1) for a user."""
    digest = hashlib.sha256(str(user_id).encode()).digest()
    return int(struct.unpack(">I", digest[:4])[0]) % 0xFFFFFFFE + 1


def livekit_token(
    *,
    api_key: str,
    api_secret: str,
    identity: str,
    name: str,
    room: str,
    ttl_seconds: int,
    can_publish: bool = True,
    now: int | None = None,
) -> str:
    """A LiveKit access token: HS256 JWT with the participant identity and a ``video`` room grant."""
    issued = int(time.time()) if now is None else now
    claims = {
        "iss": api_key,
        "sub": identity,
        "name": name,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "video": {
            "room": room,
            "roomJoin": True,
            "canPublish": can_publish,
            "canSubscribe": True,
            "canPublishData": can_publish,
        },
        "metadata": "",
    }
    return pyjwt.encode(claims, api_secret, algorithm="HS256")
