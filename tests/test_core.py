"""The cross-cutting contract: error shape, request ids, health, metrics, security headers."""

from __future__ import annotations

from tests.conftest import assert_error


async def test_unknown_route_is_404_in_the_error_shape(client):
    r = await client.get("/api/v1/nope")
    err = assert_error(r, 404, "not_found")
    assert "/api/v1/nope" in err["message"]


async def test_request_id_is_honoured_or_generated(client):
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 32


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["database"] == "ok"


async def test_security_headers(client):
    r = await client.get("/healthz")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


async def test_metrics_exposes_route_templates(client):
    await client.get("/healthz")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert 'halobuzz_http_requests_total{method="GET",route="/healthz",status="200"}' in r.text
    assert "halobuzz_db_pool_size" in r.text
