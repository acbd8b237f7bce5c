"""The AI engine as a separate HTTP service: signed requests, replay refusal, degrade when down."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from halobuzz.ai.engine import SIG_HEADER, TS_HEADER, EngineClient, create_engine_app, sign
from halobuzz.ai.text import Policy

SECRET = "engine-test-secret-0123456789abcdef"


@pytest.fixture
async def engine_url() -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(create_engine_app(SECRET), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert not task.done() and time.monotonic() < deadline, "engine did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_signed_requests_work_and_bad_or_replayed_ones_are_refused(engine_url: str) -> None:
    async with httpx.AsyncClient(base_url=engine_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        body = json.dumps({"text": "you r3tard"}).encode()
        ts = int(time.time())
        good = {TS_HEADER: str(ts), SIG_HEADER: sign(SECRET, ts, body)}
        ok = await http.post("/v1/moderate/text", content=body, headers=good)
        assert ok.status_code == 200 and ok.json()["labels"] == {"slur": 0.95}
        replay = await http.post("/v1/moderate/text", content=body, headers=good)
        assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed_request"
        wrong = {TS_HEADER: str(ts), SIG_HEADER: sign("another-secret", ts, body)}
        bad = await http.post("/v1/moderate/text", content=body, headers=wrong)
        assert bad.json()["error"]["code"] == "bad_signature"
        old = ts - 3600
        stale = await http.post(
            "/v1/moderate/text", content=body, headers={TS_HEADER: str(old), SIG_HEADER: sign(SECRET, old, body)}
        )
        assert stale.json()["error"]["code"] == "stale_request"
        tampered = json.dumps({"text": "hello"}).encode()
        forged = await http.post(
            "/v1/moderate/text", content=tampered, headers={TS_HEADER: str(ts + 1), SIG_HEADER: good[SIG_HEADER]}
        )
        assert forged.json()["error"]["code"] == "bad_signature"
        assert (await http.post("/v1/moderate/text", content=b"x")).status_code == 401


async def test_client_uses_engine_and_degrades_when_it_is_down(engine_url: str) -> None:
    client = EngineClient(engine_url, SECRET)
    result, degraded = await client.analyze("greetings from Scunthorpe")
    assert result.labels == {} and degraded is False
    result, degraded = await client.analyze("what the fuck")
    assert result.labels == {"profanity": 0.75} and not degraded
    await client.close()
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    policy = Policy()
    allow = EngineClient(closed, SECRET, on_failure="allow")
    hold = EngineClient(closed, SECRET, on_failure="hold")
    result, degraded = await allow.analyze("anything")
    assert degraded and policy.decide(result) == "allow"
    result, degraded = await hold.analyze("anything")
    assert degraded and policy.decide(result) == "hold"
    await allow.close()
    await hold.close()
    wrong = EngineClient(engine_url, "not-the-secret", on_failure="hold")
    result, degraded = await wrong.analyze("hello")
    assert degraded and policy.decide(result) == "hold"
    await wrong.close()
