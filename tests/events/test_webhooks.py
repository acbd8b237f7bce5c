"""Outbound webhooks: signed deliveries to a real local HTTP server, retried until it accepts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from halobuzz.app import HaloBuzzApp
from tests.events.conftest import wait_for
from tests.jobs.test_scheduler import _admin

SECRET = "whsec-" + "s" * 24


def verify(header: str, body: bytes, secret: str) -> bool:
    """What an integrator does (docs/events.md): recompute the HMAC of "t.body" and compare."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@dataclass
class Receiver:
    fail_first: int = 1
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    url: str = ""

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return Response("busy", status_code=503)
        signature = request.headers.get("x-halobuzz-signature", "")
        if not verify(signature, body, SECRET):
            return Response("bad signature", status_code=400)
        self.received.append(json.loads(body))
        return Response(status_code=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/hook", rec.handle, methods=["POST"])]),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started)
    port = server.servers[0].sockets[0].getsockname()[1]
    rec.url = f"http://127.0.0.1:{port}/hook"
    yield rec
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=20)


async def test_signed_delivery_retried_until_accepted(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, receiver: Receiver
) -> None:
    admin = await _admin(app)
    r = await client.post(
        "/api/v1/admin/webhooks",
        json={"url": receiver.url, "secret": SECRET, "event_types": ["user.new_follower"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    assert "secret" not in hook
    alice, bob = await make_user(), await make_user()
    r = await client.post(f"/api/v1/users/{bob.id}/follow", headers=alice.headers)
    assert r.status_code == 200

    await wait_for(lambda: receiver.received)
    envelope = receiver.received[0]
    assert envelope["type"] == "user.new_follower" and envelope["version"] == 1
    assert envelope["data"]["user_id"] == str(bob.id)
    assert receiver.attempts == 2  # the first answer was 503

    async def delivered() -> list[dict[str, Any]]:
        r = await client.get(f"/api/v1/admin/webhooks/{hook['id']}/deliveries", headers=admin)
        assert r.status_code == 200, r.text
        return [d for d in r.json()["items"] if d["status"] == "succeeded"]

    (delivery,) = await wait_for(delivered)
    assert delivery["attempts"] == 2 and delivery["last_status_code"] == 204
    assert delivery["event_id"] == envelope["id"]

    r = await client.get("/api/v1/admin/webhooks", headers=admin)
    assert [h["id"] for h in r.json()] == [hook["id"]]
    r = await client.delete(f"/api/v1/admin/webhooks/{hook['id']}", headers=admin)
    assert r.status_code == 204
    r = await client.get(f"/api/v1/admin/webhooks/{hook['id']}/deliveries", headers=admin)
    assert r.status_code == 404


async def test_webhook_urls_and_types_are_checked(app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any) -> None:
    admin = await _admin(app)
    base = {"secret": SECRET, "event_types": ["gift.sent"]}
    for url in ("http://example.com/hook", "ftp://127.0.0.1/x", "not a url"):
        r = await client.post("/api/v1/admin/webhooks", json={**base, "url": url}, headers=admin)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_webhook_url", r.text
    r = await client.post(
        "/api/v1/admin/webhooks", json={**base, "url": "https://example.com/h", "event_types": ["nope"]}, headers=admin
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_event_types"
    user = await make_user()
    r = await client.post("/api/v1/admin/webhooks", json={**base, "url": "https://example.com/h"}, headers=user.headers)
    assert r.status_code == 403
