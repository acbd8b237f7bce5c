"""SRT handshake pieces for the SRT ingest (draft-sharabayko-srt, libsrt's handshake.md).

The ingest answers a caller's INDUCTION itself with a SYN cookie of its own (no state kept for
callers that never come back), reads the Stream ID (the stream key) from the CONCLUSION, and only
then starts an ffmpeg SRT listener for the publisher. It replays an INDUCTION to that listener, puts
the listener's cookie into the caller's CONCLUSION, and from there relays datagrams unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import time
from dataclasses import dataclass

HEADER = 16
CIF = 48  # the fixed part of a handshake
COOKIE_AT = HEADER + 28
TYPE_AT = HEADER + 20
HS_INDUCTION = 1
HS_CONCLUSION = 0xFFFFFFFF
SRT_MAGIC = 0x4A17
EXT_SID = 5
# Rejection: handshake type = URQ_FAILURE_TYPES (1000) + reason; SRT_REJX_FORBIDDEN = 1000 + 403.
REJECT_FORBIDDEN = 1000 + 1403


@dataclass(frozen=True, slots=True)
class Handshake:
    version: int
    encryption: int
    extension: int
    isn: int
    mss: int
    window: int
    type: int
    socket_id: int
    cookie: int
    timestamp: int
    dest: int
    raw: bytes


def is_handshake(data: bytes) -> bool:
    return len(data) >= HEADER + CIF and data[0] & 0x80 != 0 and struct.unpack(">H", data[:2])[0] & 0x7FFF == 0


def parse(data: bytes) -> Handshake:
    _, _, timestamp, dest = struct.unpack(">IIII", data[:HEADER])
    version, enc, ext, isn, mss, window, kind, sid, cookie = struct.unpack(">IHHIIIIII", data[HEADER : HEADER + 32])
    return Handshake(version, enc, ext, isn, mss, window, kind, sid, cookie, timestamp, dest, data)


def stream_id(hs: Handshake) -> str | None:
    """The Stream ID extension of a CONCLUSION (4-byte words, each byte-reversed, NUL padded)."""
    pos = HEADER + CIF
    data = hs.raw
    while pos + 4 <= len(data):
        ext_type, words = struct.unpack(">HH", data[pos : pos + 4])
        body = data[pos + 4 : pos + 4 + words * 4]
        pos += 4 + words * 4
        if ext_type == EXT_SID:
            chars = b"".join(body[i : i + 4][::-1] for i in range(0, len(body), 4))
            return chars.rstrip(b"\x00").decode(errors="replace")
    return None


def key_of(sid: str) -> str:
    """The stream key in a Stream ID: plain, or SRT access control syntax ``#!::r=<key>,m=publish``."""
    if sid.startswith("#!::"):
        for item in sid[4:].split(","):
            name, _, value = item.partition("=")
            if name.strip() == "r":
                return value.strip()
        return ""
    return sid.strip()


def cookie(secret: bytes, addr: tuple[str, int], minute: int | None = None) -> int:
    """A SYN cookie for a caller's address, valid for the current and the previous minute."""
    m = int(time.time() // 60) if minute is None else minute
    digest = hmac.new(secret, f"{addr[0]}:{addr[1]}:{m}".encode(), hashlib.sha256).digest()
    return struct.unpack(">I", digest[:4])[0] or 1


def cookie_ok(secret: bytes, addr: tuple[str, int], value: int) -> bool:
    now = int(time.time() // 60)
    return any(
        hmac.compare_digest(struct.pack(">I", cookie(secret, addr, m)), struct.pack(">I", value))
        for m in (now, now - 1)
    )


def induction_response(hs: Handshake, value: int) -> bytes:
    """What an HSv5 listener answers an INDUCTION: version 5, the SRT magic, its cookie."""
    out = bytearray(hs.raw[: HEADER + CIF])
    struct.pack_into(">I", out, 12, hs.socket_id)
    struct.pack_into(">IHH", out, HEADER, 5, 0, SRT_MAGIC)
    struct.pack_into(">I", out, COOKIE_AT, value)
    return bytes(out)


def induction_for(hs: Handshake) -> bytes:
    """An INDUCTION as the caller sent it, rebuilt from its CONCLUSION (to replay to the listener)."""
    out = bytearray(hs.raw[: HEADER + CIF])
    struct.pack_into(">IIII", out, 0, 0x80000000, 0, hs.timestamp, 0)
    struct.pack_into(">IHH", out, HEADER, 4, 0, 2)
    struct.pack_into(">I", out, TYPE_AT, HS_INDUCTION)
    struct.pack_into(">I", out, COOKIE_AT, 0)
    return bytes(out)


def with_cookie(data: bytes, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(">I", out, COOKIE_AT, value)
    return bytes(out)


def rejection(hs: Handshake, reason: int = REJECT_FORBIDDEN) -> bytes:
    """A listener's refusal of a CONCLUSION (the caller reports the connection rejected)."""
    out = bytearray(hs.raw[: HEADER + CIF])
    struct.pack_into(">I", out, 12, hs.socket_id)
    struct.pack_into(">IHH", out, HEADER, 5, 0, 0)
    struct.pack_into(">I", out, TYPE_AT, reason)
    return bytes(out)
