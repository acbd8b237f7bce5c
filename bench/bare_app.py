"""The reference: a bare ASGI app answering every request with fixed bytes (the ceiling for any
Python HTTP app on this machine). ``BARE_BODY_FILE`` names the bytes to serve."""

from __future__ import annotations

import os
from pathlib import Path

BODY = Path(os.environ["BARE_BODY_FILE"]).read_bytes() if os.environ.get("BARE_BODY_FILE") else b'{"status":"ok"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
