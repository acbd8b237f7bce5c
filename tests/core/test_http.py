"""The cross-cutting HTTP layer: body limits, CORS, security headers, the error shape for every
failure, request ids, metrics by route template, readiness."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import AsyncIterator

from pydantic import BaseModel, Field

from halobuzz.core.errors import NotFound
from tests.conftest import assert_error, client_for

ALLOWED_ORIGIN = "http://localhost:5010"


class Address(BaseModel):
    city: str = Field(min_length=2)


class Profile(BaseModel):
    name: str
    age: int
    address: Address


def add_test_routes(app) -> None:
    """Routes that exist only in this test's app, registered on the same FastAPI instance."""

    async def boom() -> dict[str, str]:
        raise RuntimeError("secret internals: password=hunter2")

    async def echo(profile: Profile) -> dict[str, str]:
        return {"name": profile.name}

    async def missing(item_id: int) -> dict[str, int]:
        raise NotFound(f"no item {item_id}", code="item_not_found", details={"item_id": item_id})

    app.api.add_api_route("/api/v1/test/boom", boom, methods=["GET"])
    app.api.add_api_route("/api/v1/test/echo", echo, methods=["POST"])
    app.api.add_api_route("/api/v1/test/items/{item_id}", missing, methods=["GET"])


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        sample = re.fullmatch(re.escape(name) + r"\{(.*)\} (\S+)", line)
        if sample and dict(re.findall(r'(\w+)="([^"]*)"', sample[1])) == labels:
            return float(sample[2])
    return 0.0


# --- body size --------------------------------------------------------------------------------


async def test_declared_body_over_the_limit_is_413(app_factory):
    app = await app_factory(http={"max_body_bytes": 1000})
    add_test_routes(app)
    async with client_for(app) as client:
        ok = await client.post("/api/v1/test/echo", json={"name": "a", "age": 1, "address": {"city": "Pokhara"}})
        assert ok.status_code == 200 and ok.json() == {"name": "a"}
        r = await client.post("/api/v1/test/echo", content=b"x" * 1001, headers={"Content-Type": "application/json"})
        err = assert_error(r, 413, "payload_too_large")
        assert "1000 bytes" in err["message"]
        assert r.headers["content-type"] == "application/json"
        # A Content-Length that is not a number is refused the same way.
        r = await client.post("/api/v1/test/echo", content=b"{}", headers={"Content-Length": "ten"})
        assert_error(r, 413, "payload_too_large")


async def test_streamed_body_over_the_limit_is_413(app_factory):
    app = await app_factory(http={"max_body_bytes": 1000})
    add_test_routes(app)

    async def chunks(count: int) -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b" " * 400

    async with client_for(app) as client:
        r = await client.post("/api/v1/test/echo", content=chunks(5), headers={"Content-Type": "application/json"})
        assert "content-length" not in r.request.headers and r.request.headers["transfer-encoding"] == "chunked"
        err = assert_error(r, 413, "payload_too_large")
        assert "1000 bytes" in err["message"]
        # Under the limit, a streamed body reaches the route.
        r = await client.post("/api/v1/test/echo", content=chunks(2), headers={"Content-Type": "application/json"})
        assert_error(r, 422, "invalid_input")


async def test_uploads_have_their_own_limit(app_factory):
    app = await app_factory(http={"max_body_bytes": 1000, "max_upload_bytes": 5000})
    async with client_for(app) as client:
        files = {"file": ("a.png", b"x" * 3000, "image/png")}
        r = await client.post("/api/v1/test/nowhere", files=files)
        assert r.status_code == 404  # past the body limit, routed normally
        r = await client.post("/api/v1/test/nowhere", files={"file": ("a.png", b"x" * 6000, "image/png")})
        assert_error(r, 413, "payload_too_large")


# --- CORS and security headers ----------------------------------------------------------------


async def test_cors_preflight_allows_configured_origins_only(client):
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type",
    }
    r = await client.options("/api/v1/admin/users", headers={"Origin": ALLOWED_ORIGIN, **preflight})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()

    r = await client.options("/api/v1/admin/users", headers={"Origin": "https://evil.example", **preflight})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers

    # Simple requests: the allowed origin is echoed (and may read the request id), others get nothing.
    r = await client.get("/healthz", headers={"Origin": ALLOWED_ORIGIN})
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    r = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_security_headers_on_every_response(client):
    for r in (
        await client.get("/healthz"),
        await client.get("/api/v1/admin/users"),
        await client.get("/api/v1/definitely-not-a-route"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert r.headers["cross-origin-opener-policy"] == "same-origin"
        assert "camera=()" in r.headers["permissions-policy"]
    api = await client.get("/api/v1/admin/users")
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


# --- errors -----------------------------------------------------------------------------------


async def test_unexpected_exception_is_a_500_without_internals(app):
    add_test_routes(app)
    async with client_for(app) as client:
        r = await client.get("/api/v1/test/boom", headers={"X-Request-ID": "boom-1"})
    err = assert_error(r, 500, "internal_error")
    assert err["request_id"] == "boom-1"
    assert "hunter2" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    assert err["details"] is None


async def test_domain_error_shape(app):
    add_test_routes(app)
    async with client_for(app) as client:
        r = await client.get("/api/v1/test/items/7")
    err = assert_error(r, 404, "item_not_found")
    assert err == {
        "code": "item_not_found",
        "message": "no item 7",
        "details": {"item_id": 7},
        "request_id": err["request_id"],
    }


async def test_validation_errors_list_each_field(app):
    add_test_routes(app)
    async with client_for(app) as client:
        r = await client.post("/api/v1/test/echo", json={"name": "a", "age": "old", "address": {"city": "x"}})
        err = assert_error(r, 422, "invalid_input")
        fields = {d["field"]: d["message"] for d in err["details"]}
        assert set(fields) == {"age", "address.city"}
        assert all(isinstance(m, str) and m for m in fields.values())
        assert err["message"].split(":")[0] in fields

        r = await client.post("/api/v1/test/echo", json={"age": 3})
        err = assert_error(r, 422, "invalid_input")
        assert {d["field"] for d in err["details"]} == {"name", "address"}

        r = await client.post("/api/v1/test/echo", content=b'{"name": ', headers={"Content-Type": "application/json"})
        err = assert_error(r, 422, "invalid_input")
        assert err["details"] and {"field", "message"} <= set(err["details"][0])

        err = assert_error(await client.get("/api/v1/test/items/seven"), 422, "invalid_input")
        assert err["details"][0]["field"] == "item_id"

        err = assert_error(await client.delete("/api/v1/test/echo"), 405, "method_not_allowed")


# --- request ids ------------------------------------------------------------------------------


async def test_request_id_round_trip(client):
    r = await client.get("/api/v1/admin/users", headers={"X-Request-ID": "req-42.a:b"})
    assert r.headers["x-request-id"] == "req-42.a:b"
    assert assert_error(r, 401)["request_id"] == "req-42.a:b"

    for bad in ("has spaces", "x" * 129, "semi;colon"):
        r = await client.get("/healthz", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), bad
    first = (await client.get("/healthz")).headers["x-request-id"]
    second = (await client.get("/healthz")).headers["x-request-id"]
    assert first != second


# --- metrics and health -----------------------------------------------------------------------


async def test_metrics_by_route_template(client, make_user):
    admin = await make_user(roles=["admin"])
    before = (await client.get("/metrics")).text
    template = "/api/v1/admin/users/{user_id}"
    for _ in range(2):
        assert (await client.get(f"/api/v1/admin/users/{admin.id}", headers=admin.headers)).status_code == 200
    assert (await client.get(f"/api/v1/admin/users/{uuid.uuid4()}", headers=admin.headers)).status_code == 404
    await client.get("/healthz")
    victim = await make_user()
    r = await client.post(f"/api/v1/admin/users/{victim.id}/ban", json={"reason": "spam"}, headers=admin.headers)
    assert r.status_code == 200

    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text

    def grew(name: str, by: float, **labels: str) -> None:
        assert metric_value(after, name, **labels) - metric_value(before, name, **labels) == by, (name, labels)

    grew("halobuzz_http_requests_total", 2, method="GET", route=template, status="200")
    grew("halobuzz_http_requests_total", 1, method="GET", route=template, status="404")
    grew("halobuzz_http_requests_total", 1, method="GET", route="/healthz", status="200")
    grew("halobuzz_http_request_duration_seconds_count", 3, method="GET", route=template)
    grew("halobuzz_http_request_duration_seconds_bucket", 3, method="GET", route=template, le="+Inf")
    grew("halobuzz_business_events_total", 1, event="user_banned")
    # No raw paths (with ids) become labels.
    assert str(admin.id) not in after
    assert "halobuzz_db_pool_size" in after and "halobuzz_db_pool_checked_out" in after


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_readyz_is_503_when_the_database_is_unreachable(app_factory, tmp_path):
    for url in (
        f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}",
        f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/postgres",
    ):
        app = await app_factory(database_url=url)
        async with client_for(app) as client:
            r = await client.get("/readyz")
            assert r.status_code == 503, (url, r.text)
            body = r.json()
            assert body["status"] == "not_ready"
            assert body["checks"]["database"].startswith("error: ")
            assert (await client.get("/healthz")).status_code == 200


async def test_readyz_reports_an_unreachable_redis(app_factory):
    app = await app_factory(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    async with client_for(app) as client:
        r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"] == "ok"
    assert r.json()["checks"]["redis"].startswith("error: ")


async def test_readyz_ok(client):
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"
    assert set(r.json()["checks"].values()) == {"ok"}
