"""Rate limiting through the HTTP API: per IP, per user, auth routes, per-route rules, shared store."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import TEST_REDIS_URL, assert_error, client_for

PATH = "/api/v1/categories"


def assert_limited(r, limit: int) -> dict:
    err = assert_error(r, 429, "rate_limited")
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 60
    assert err["details"] == {"retry_after": retry}
    assert r.headers["ratelimit-limit"] == str(limit)
    assert r.headers["ratelimit-remaining"] == "0"
    assert int(r.headers["ratelimit-reset"]) >= 1
    return err


async def test_sixth_request_from_one_ip_is_refused(app_factory):
    app = await app_factory(rate_limit={"enabled": True, "per_ip_per_minute": 5})
    async with client_for(app) as client, client_for(app, ip="10.0.0.2") as other:
        remaining = []
        for _ in range(5):
            r = await client.get(PATH)
            assert r.status_code != 429, r.text
            assert r.headers["ratelimit-limit"] == "5"
            remaining.append(int(r.headers["ratelimit-remaining"]))
            assert 0 <= int(r.headers["ratelimit-reset"]) <= 60
        assert remaining == [4, 3, 2, 1, 0]

        r = await client.get(PATH, headers={"X-Request-ID": "limited-1"})
        err = assert_limited(r, 5)
        assert err["request_id"] == "limited-1"
        assert r.headers["x-content-type-options"] == "nosniff"
        # Every route under /api shares the IP's bucket.
        assert_limited(await client.get("/api/v1/admin/users"), 5)

        # Another address has its own bucket.
        r = await other.get(PATH)
        assert r.status_code != 429 and r.headers["ratelimit-remaining"] == "4"

        # Health and metrics are never limited.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


async def test_authenticated_requests_have_per_user_buckets(app_factory, make_settings):
    app = await app_factory(rate_limit={"enabled": True, "per_ip_per_minute": 100, "per_user_per_minute": 3})
    from halobuzz.accounts import auth
    from halobuzz.accounts.models import User

    async def sign_in(name: str) -> dict[str, str]:
        rt = app.runtime
        async with rt.db.session() as s:
            user = User(
                username=name,
                username_key=name,
                email=f"{name}@example.com",
                password_hash="x",
                display_name=name,
                roles=["user", "admin"],
            )
            s.add(user)
            await s.flush()
            pair = await auth.start_session(
                session=s, jwt=rt.jwt, settings=rt.settings.auth, user=user, device="t", ip=None
            )
        return {"Authorization": f"Bearer {pair.access_token}"}

    alice, bob = await sign_in("alice"), await sign_in("bob")
    async with client_for(app) as client:
        for _ in range(3):
            r = await client.get("/api/v1/admin/users", headers=alice)
            assert r.status_code == 200, r.text
        assert r.headers["ratelimit-limit"] == "3" and r.headers["ratelimit-remaining"] == "0"
        assert_limited(await client.get("/api/v1/admin/users", headers=alice), 3)
        # The same address, another user, and anonymous callers are unaffected.
        assert (await client.get("/api/v1/admin/users", headers=bob)).status_code == 200
        r = await client.get(PATH)
        assert r.status_code != 429 and r.headers["ratelimit-limit"] == "100"
        # An invalid token counts against the address only.
        r = await client.get(PATH, headers={"Authorization": "Bearer not-a-jwt"})
        assert r.status_code != 429 and r.headers["ratelimit-limit"] == "100"
    # Alice is limited from every address.
    async with client_for(app, ip="10.0.0.9") as elsewhere:
        assert_limited(await elsewhere.get("/api/v1/admin/users", headers=alice), 3)


async def test_auth_routes_have_a_stricter_bucket(app_factory):
    app = await app_factory(rate_limit={"enabled": True, "per_ip_per_minute": 100, "auth_per_ip_per_minute": 2})
    body = {"login": "nobody", "password": "wrong-password-123"}
    async with client_for(app) as client:
        for _ in range(2):
            r = await client.post("/api/v1/auth/login", json=body)
            assert r.status_code != 429, r.text
            assert r.headers["ratelimit-limit"] == "2"
        assert_limited(await client.post("/api/v1/auth/login", json=body), 2)
        assert_limited(await client.post("/api/v1/auth/register", json={}), 2)
        r = await client.get(PATH)
        assert r.status_code != 429
        # Refused auth requests did not use up the general allowance.
        assert r.headers["ratelimit-remaining"] == "97"
    async with client_for(app, ip="10.0.0.3") as other:
        assert (await other.post("/api/v1/auth/login", json=body)).status_code != 429


async def test_per_route_rules(app_factory):
    app = await app_factory(
        rate_limit={
            "enabled": True,
            "per_ip_per_minute": 100,
            "routes": "GET /api/v1/categories=2, get /api/v1/admin/users/{user_id}=1",
        }
    )
    async with client_for(app) as client, client_for(app, ip="10.0.0.4") as other:
        for _ in range(2):
            r = await client.get(PATH)
            assert r.status_code != 429 and r.headers["ratelimit-limit"] == "2"
        assert_limited(await client.get(PATH), 2)
        # Other methods, other paths and other callers are not covered by the rule.
        assert (await client.post(PATH, json={})).status_code != 429
        assert (await client.get(PATH + "/music")).status_code != 429
        assert (await other.get(PATH)).status_code != 429

        # {user_id} stands for any one segment; all ids share the rule's bucket.
        assert (await client.get("/api/v1/admin/users/a")).status_code != 429
        assert_limited(await client.get("/api/v1/admin/users/b"), 1)
        assert (await client.get("/api/v1/admin/users/a/roles")).status_code != 429


@pytest.mark.parametrize(
    "spec",
    [
        "GET /api/v1/categories",
        "GET /api/v1/categories=many",
        "GET /api/v1/categories=0",
        "FETCH /api/v1/categories=5",
        "GET api/v1/categories=5",
        "/api/v1/categories=5",
        "GET /api/v1/categories=5, POST",
    ],
)
async def test_invalid_route_rules_are_refused_at_startup(app_factory, spec):
    with pytest.raises(ValueError, match="RATE_LIMIT_ROUTES entry") as caught:
        await app_factory(rate_limit={"enabled": True, "routes": spec})
    assert "METHOD /path=N" in str(caught.value)


async def test_limits_must_be_positive(make_settings):
    with pytest.raises(ValueError, match="per_ip_per_minute"):
        make_settings(rate_limit={"per_ip_per_minute": 0})


async def test_disabled_limits_add_no_headers(app_factory):
    app = await app_factory(rate_limit={"enabled": False, "per_ip_per_minute": 1})
    async with client_for(app) as client:
        for _ in range(3):
            r = await client.get(PATH)
            assert r.status_code != 429 and "ratelimit-limit" not in r.headers


async def test_instances_share_limits_through_redis(app_factory):
    """With REDIS_URL, every instance draws from the same buckets; without it, each has its own."""
    first = await app_factory(rate_limit={"enabled": True, "per_ip_per_minute": 5})
    second = await app_factory(rate_limit={"enabled": True, "per_ip_per_minute": 5})
    async with client_for(first) as a, client_for(second) as b:
        for _ in range(3):
            assert (await a.get(PATH)).status_code != 429
        for _ in range(2):
            assert (await b.get(PATH)).status_code != 429
        r = await b.get(PATH)
        if TEST_REDIS_URL:
            assert_limited(r, 5)
            assert_limited(await a.get(PATH), 5)
        else:
            assert r.status_code != 429 and r.headers["ratelimit-remaining"] == "2"
            for _ in range(2):
                assert (await a.get(PATH)).status_code != 429
            assert_limited(await a.get(PATH), 5)


async def test_unreachable_limit_store_lets_requests_through(app_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = await app_factory(
        redis_url=f"redis://127.0.0.1:{port}/0", rate_limit={"enabled": True, "per_ip_per_minute": 1}
    )
    async with client_for(app) as client:
        for _ in range(3):
            r = await client.get(PATH)
            assert r.status_code not in (429, 500), r.text
            assert "ratelimit-limit" not in r.headers


async def test_cached_responses_carry_the_current_limits(app_factory):
    app = await app_factory(rate_limit={"enabled": True, "per_ip_per_minute": 5})
    calls = []

    async def counted() -> dict[str, int]:
        calls.append(1)
        return {"calls": len(calls)}

    app.api.add_api_route("/api/v1/test/cached", counted, methods=["GET"])
    app.runtime.cache.register("/api/v1/test/cached", "test-cached")
    async with client_for(app) as client:
        seen = []
        for _ in range(5):
            r = await client.get("/api/v1/test/cached")
            assert r.status_code == 200 and r.json() == {"calls": 1}
            seen.append((r.headers["ratelimit-remaining"], r.headers["x-request-id"]))
        assert len(calls) == 1
        assert [remaining for remaining, _ in seen] == ["4", "3", "2", "1", "0"]
        assert len({rid for _, rid in seen}) == 5
        assert_limited(await client.get("/api/v1/test/cached"), 5)
