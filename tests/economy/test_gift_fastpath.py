"""The gift fast path (economy.fastpaths) answers exactly as the FastAPI route does, leaves every
other request to the route, and never serves a sign-in that has ended."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import assert_error, client_for
from tests.economy.conftest import counts, grant_coins, key_headers, verify

API = "/api/v1"


def _without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {"error": {k: v for k, v in body["error"].items() if k != "request_id"}}


async def test_fast_and_routed_gifts_are_identical(app_factory, make_user, make_gift, live_stream, client):
    fast_app = await app_factory()
    routed_app = await app_factory(http={"fast_paths": False})
    owner = await make_user(roles=["creator"])
    stream_id = await live_stream(owner)
    gift = await make_gift(coin_price=10)
    fan = await make_user()
    await grant_coins(fast_app, fan.id, 25)
    url = f"{API}/streams/{stream_id}/gifts"
    fast_paths = fast_app.runtime.fast_paths
    async with client_for(fast_app) as fast, client_for(routed_app) as routed:
        # The first request of a sign-in goes through the route, which checks the session and
        # remembers it; the next one is served by the fast path.
        first = await fast.post(url, json={"gift_id": gift["id"]}, headers=key_headers(fan, "k1"))
        assert first.status_code == 200, first.text
        assert fast_paths.served == 0
        second = await fast.post(url, json={"gift_id": gift["id"], "quantity": 1}, headers=key_headers(fan, "k2"))
        assert second.status_code == 200, second.text
        assert fast_paths.served == 1
        assert second.json()["balance"] == 5 and second.json()["coins_spent"] == 10
        assert second.headers["content-type"] == "application/json"
        # Replays answer the stored receipt: byte for byte the same from both paths.
        for key, response in (("k1", first), ("k2", second)):
            replay_fast = await fast.post(url, json={"gift_id": gift["id"]}, headers=key_headers(fan, key))
            replay_routed = await routed.post(url, json={"gift_id": gift["id"]}, headers=key_headers(fan, key))
            assert replay_fast.content == replay_routed.content == response.content
        assert fast_paths.served == 3
        # Service errors in the one error shape, the same as the route's.
        poor_fast = await fast.post(url, json={"gift_id": gift["id"]}, headers=key_headers(fan, "k3"))
        poor_routed = await routed.post(url, json={"gift_id": gift["id"]}, headers=key_headers(fan, "k4"))
        assert fast_paths.served == 4
        fast_err = assert_error(poor_fast, 409, "insufficient_funds")
        assert_error(poor_routed, 409, "insufficient_funds")
        assert _without_request_id(poor_fast.json()) == _without_request_id(poor_routed.json())
        assert fast_err["request_id"] == poor_fast.headers["x-request-id"]
        reused = await fast.post(url, json={"gift_id": gift["id"], "quantity": 2}, headers=key_headers(fan, "k1"))
        assert_error(reused, 409, "idempotency_key_reused")
        own = await fast.post(url, json={"gift_id": gift["id"]}, headers=key_headers(owner, "own"))
        assert_error(own, 409, "self_gift")  # the owner's first request: through the route
        own = await fast.post(url, json={"gift_id": gift["id"]}, headers=key_headers(owner, "own2"))
        assert_error(own, 409, "self_gift")
    assert routed_app.runtime.fast_paths.served == 0
    transactions, _, gifts = await counts(fast_app)
    assert (transactions, gifts) == (3, 2)  # the grant and two gifts
    assert (await verify(fast_app)).ok
    wallet = await client.get(f"{API}/wallet", headers=fan.headers)
    assert wallet.json()["balance"] == 5


async def test_other_requests_fall_through_to_the_route(app, client, make_user, make_gift, live_stream):
    owner = await make_user(roles=["creator"])
    stream_id = await live_stream(owner)
    gift = await make_gift(coin_price=1)
    fan = await make_user()
    await grant_coins(app, fan.id, 100)
    url = f"{API}/streams/{stream_id}/gifts"
    ok = await client.post(url, json={"gift_id": gift["id"]}, headers=key_headers(fan))
    assert ok.status_code == 200, ok.text  # the session is now cached
    fast_paths = app.runtime.fast_paths
    served = fast_paths.served
    cases: list[tuple[Any, dict[str, str], int, str | None]] = [
        ({"gift_id": gift["id"], "quantity": 0}, key_headers(fan), 422, None),
        ({"gift_id": gift["id"], "quantity": 1001}, key_headers(fan), 422, None),
        ({"gift_id": gift["id"], "colour": "red"}, key_headers(fan), 422, None),
        ({"gift_id": "not-a-uuid"}, key_headers(fan), 422, None),
        ({"quantity": 1}, key_headers(fan), 422, None),
        ([gift["id"]], key_headers(fan), 422, None),
        ({"gift_id": gift["id"]}, fan.headers, 422, None),  # no Idempotency-Key
        ({"gift_id": gift["id"]}, {**fan.headers, "Idempotency-Key": "k" * 256}, 422, None),
        ({"gift_id": gift["id"]}, {**key_headers(fan), "Authorization": "Bearer nope"}, 401, "invalid_token"),
        ({"gift_id": gift["id"]}, {"Idempotency-Key": "x"}, 401, "not_authenticated"),
        ({"gift_id": str(uuid.uuid4())}, key_headers(fan), 404, "gift_not_found"),  # served, a service error
    ]
    for body, headers, status, code in cases:
        assert_error(await client.post(url, json=body, headers=headers), status, code)
    broken = await client.post(
        url, content=b'{"gift_id": ', headers={**key_headers(fan), "content-type": "application/json"}
    )
    assert_error(broken, 422)
    assert fast_paths.served == served + 1  # only the unknown gift was answered by the fast path
    # Accepted by the route though not in the fast path's plain form: an upper-case stream id, a
    # quantity sent as a string, a body larger than the fast path reads.
    upper_url = f"{API}/streams/{stream_id.upper()}/gifts"
    upper = await client.post(upper_url, json={"gift_id": gift["id"]}, headers=key_headers(fan))
    assert upper.status_code == 200, upper.text
    as_text = await client.post(url, json={"gift_id": gift["id"], "quantity": "2"}, headers=key_headers(fan))
    assert as_text.status_code == 200 and as_text.json()["quantity"] == 2, as_text.text
    as_bool = await client.post(url, json={"gift_id": gift["id"], "quantity": True}, headers=key_headers(fan))
    assert as_bool.status_code == 200 and as_bool.json()["quantity"] == 1, as_bool.text
    padded = b'{"gift_id": "' + gift["id"].encode() + b'"' + b" " * 5000 + b"}"
    big = await client.post(url, content=padded, headers={**key_headers(fan), "content-type": "application/json"})
    assert big.status_code == 200, big.text
    assert fast_paths.served == served + 1
    assert (await client.get(f"{API}/wallet", headers=fan.headers)).json()["balance"] == 100 - 6
    assert (await verify(app)).ok


async def test_ended_sign_in_is_refused_at_once(app, client, make_user, make_gift, live_stream):
    owner = await make_user(roles=["creator"])
    stream_id = await live_stream(owner)
    gift = await make_gift(coin_price=1)
    admin = await make_user(roles=["admin"])
    fan, other = await make_user(), await make_user()
    for user in (fan, other):
        await grant_coins(app, user.id, 10)
    url = f"{API}/streams/{stream_id}/gifts"
    for user in (fan, other):
        for _ in range(2):  # the second is served by the fast path
            assert (await client.post(url, json={"gift_id": gift["id"]}, headers=key_headers(user))).status_code == 200
    served = app.runtime.fast_paths.served
    assert served == 2
    r = await client.post(f"{API}/admin/users/{fan.id}/ban", json={"reason": "spam"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert (await client.post(f"{API}/auth/logout", headers=other.headers)).status_code == 204
    assert_error(await client.post(url, json={"gift_id": gift["id"]}, headers=key_headers(fan)), 401)
    assert_error(await client.post(url, json={"gift_id": gift["id"]}, headers=key_headers(other)), 401)
    assert app.runtime.fast_paths.served == served
    transactions, _, gifts = await counts(app)
    assert (transactions, gifts) == (6, 4)
