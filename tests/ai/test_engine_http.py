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
from tests.realtime.support import live, sockets

__all__ = ["live", "sockets"]

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


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    ts = int(time.time())
    return {TS_HEADER: str(ts), SIG_HEADER: sign(secret, ts, body)}


async def test_sentiment_tags_and_engagement_over_http(engine_url: str) -> None:
    async with httpx.AsyncClient(base_url=engine_url) as http:
        for path, payload, check in (
            (
                "/v1/sentiment",
                {"text": "this stream is great"},
                lambda d: d["label"] == "positive" and d["language"] == "en",
            ),
            (
                "/v1/sentiment",
                {"text": "yo stream ekdam ramro cha"},
                lambda d: d["label"] == "positive" and d["language"] == "ne",
            ),
            (
                "/v1/tags",
                {"title": "PUBG ranked", "description": "then momo"},
                lambda d: d["tags"] == ["gaming", "cooking"],
            ),
            (
                "/v1/engagement",
                {
                    "samples": [
                        {"at": f"2026-12-02T10:0{i}:00+00:00", "viewers": v, "messages": 10}
                        for i, v in enumerate((40, 41, 40, 20, 18))
                    ]
                },
                lambda d: d["status"] == "audience_falling" and d["hint"],
            ),
            ("/v1/moderate/text", {"text": "murkha", "region": "np"}, lambda d: d["labels"] == {"insult": 0.65}),
        ):
            body = json.dumps(payload).encode()
            headers = signed(body)
            r = await http.post(path, content=body, headers=headers)
            assert r.status_code == 200 and check(r.json()), (path, r.text)
            replay = await http.post(path, content=body, headers=headers)
            assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed_request"
            bad = await http.post(path, content=body, headers=signed(body, "wrong-secret"))
            assert bad.status_code == 401 and bad.json()["error"]["code"] == "bad_signature"
        for path, payload in (
            ("/v1/sentiment", {"text": 5}),
            ("/v1/tags", {}),
            ("/v1/engagement", {"samples": [{"at": "yesterday", "viewers": 1, "messages": 1}]}),
            ("/v1/engagement", {"samples": [{"at": "2026-12-02T10:00:00", "viewers": 1, "messages": 1}]}),
        ):
            body = json.dumps(payload).encode()
            r = await http.post(path, content=body, headers=signed(body))
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", (path, r.text)


async def test_client_calls_and_degrades_for_every_endpoint(engine_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from halobuzz.ai import engagement

    client = EngineClient(engine_url, SECRET)
    assert (await client.sentiment("I hate this")).label == "negative"
    assert await client.tags("Live cricket match") == ["sports"]
    start = datetime(2026, 12, 2, tzinfo=UTC)
    samples = [engagement.Sample(start + timedelta(minutes=i), 30, m) for i, m in enumerate((12, 13, 12, 1, 0))]
    report = await client.engagement(samples, viewer_drop=0.3, chat_drop=0.5)
    assert report.signals == ["chat_quiet"]
    result, degraded = await client.analyze("go to otherchannel", blocked_terms=["otherchannel"])
    assert result.labels == {"blocked_term": 0.95} and not degraded
    await client.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = EngineClient(f"http://127.0.0.1:{s.getsockname()[1]}", SECRET)
    assert (await down.sentiment("great")).label == "neutral"
    assert await down.tags("cricket") == []
    assert (await down.engagement(samples, viewer_drop=0.3, chat_drop=0.5)).status == "insufficient_data"
    assert down.failures == 3
    await down.close()


async def test_chat_through_the_remote_engine_uses_channel_terms_and_region(engine_url, live, sockets, make_user):
    from tests.realtime.support import joined

    server = await live(moderation={"engine_url": engine_url}, ai_engine_secret=SECRET)
    owner, viewer = await make_user(roles=["creator"]), await make_user()
    r = await server.http.post("/api/v1/streams", json={"title": "np chat", "region": "np"}, headers=owner.headers)
    stream = r.json()["id"]
    await server.http.post(f"/api/v1/streams/{stream}/start", headers=owner.headers)
    await server.http.post("/api/v1/users/me/blocked-terms", json={"terms": ["rivalchannel"]}, headers=owner.headers)
    client = sockets()
    await client.connect(server, viewer.access_token)
    await joined(client, stream)
    blocked = await client.call("send_message", {"stream_id": stream, "text": "visit rivalchannel"})
    assert blocked["ok"] is False and "blocked_term" in blocked["error"]["message"]
    held = await client.call("send_message", {"stream_id": stream, "text": "timi murkha hau"})
    assert held["held"] is True and "insult" in held["reason"]  # the Nepal rule set, applied by the engine
    assert "held" not in await client.call("send_message", {"stream_id": stream, "text": "namaste sabai lai"})
