"""Wallets and gifts through the API: the revenue split, refusals that change nothing,
idempotency keys, and racing gifts from one wallet."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.conftest import assert_error
from tests.economy.conftest import counts, grant_coins, verify

API = "/api/v1"


async def wallet(client: Any, user: Any) -> dict[str, Any]:
    r = await client.get(f"{API}/wallet", headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def gift_headers(user: Any, key: str | None = None) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def test_wallet_starts_empty_and_needs_sign_in(client, fan):
    assert await wallet(client, fan) == {
        "user_id": str(fan.id),
        "balance": 0,
        "earnings_balance": 0,
        "currency": "COIN",
    }
    r = await client.get(f"{API}/wallet/transactions", headers=fan.headers)
    assert r.json() == {"items": [], "next_cursor": None}
    assert_error(await client.get(f"{API}/wallet"), 401, "not_authenticated")
    assert_error(await client.get(f"{API}/wallet/transactions?cursor=zz", headers=fan.headers), 422, "invalid_cursor")
    assert_error(await client.get(f"{API}/wallet/transactions?limit=0", headers=fan.headers), 422)


async def test_gift_splits_revenue_and_shows_in_history(app, client, fan, creator, live_stream, make_gift):
    stream_id = await live_stream(creator)
    gift = await make_gift(coin_price=7)
    await grant_coins(app, fan.id, 100)
    r = await client.post(
        f"{API}/streams/{stream_id}/gifts", json={"gift_id": gift["id"], "quantity": 3}, headers=gift_headers(fan)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["quantity"] == 3 and body["coins_spent"] == 21 and body["balance"] == 79
    assert body["gift"]["id"] == gift["id"] and body["gift"]["coin_price"] == 7
    assert (await wallet(client, fan))["balance"] == 79
    # 70 % of 21 = 14.7, floored to 14 for the creator; the platform keeps 7.
    assert (await wallet(client, creator))["earnings_balance"] == 14
    history = (await client.get(f"{API}/wallet/transactions", headers=fan.headers)).json()
    assert [(i["kind"], i["amount"], i["balance_after"]) for i in history["items"]] == [
        ("gift", -21, 79),
        ("promotion", 100, 100),
    ]
    assert history["items"][0]["transaction_id"] == body["id"]
    page = (await client.get(f"{API}/wallet/transactions?limit=1", headers=fan.headers)).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = (
        await client.get(f"{API}/wallet/transactions?limit=1&cursor={page['next_cursor']}", headers=fan.headers)
    ).json()
    assert [i["kind"] for i in rest["items"]] == ["promotion"] and rest["next_cursor"] is None
    earned = (await client.get(f"{API}/wallet/transactions", headers=creator.headers)).json()["items"]
    assert [(i["account"], i["amount"]) for i in earned] == [("creator_earnings", 14)]
    board = (await client.get(f"{API}/streams/{stream_id}/gifts/leaderboard")).json()
    assert [(i["rank"], i["user"]["id"], i["coins"], i["gifts"]) for i in board["items"]] == [(1, str(fan.id), 21, 3)]
    assert (await verify(app)).ok


async def test_revenue_share_setting(app_factory, make_user):
    from tests.conftest import client_for

    app = await app_factory(economy={"revenue_share": 0.5})
    async with client_for(app) as client:
        admin = await make_user(roles=["admin"])
        creator = await make_user(roles=["creator"])
        fan = await make_user()
        sid = (await client.post(f"{API}/streams", json={"title": "x"}, headers=creator.headers)).json()["id"]
        await client.post(f"{API}/streams/{sid}/start", headers=creator.headers)
        gift = (
            await client.post(f"{API}/admin/gifts", json={"name": "g", "coin_price": 3}, headers=admin.headers)
        ).json()
        await grant_coins(app, fan.id, 3)
        r = await client.post(f"{API}/streams/{sid}/gifts", json={"gift_id": gift["id"]}, headers=gift_headers(fan))
        assert r.status_code == 200, r.text
        assert (await wallet(client, creator))["earnings_balance"] == 1


async def test_refusals_change_nothing(app, client, fan, creator, make_user, live_stream, make_gift):
    stream_id = await live_stream(creator)
    offline_id = await live_stream(creator, live=False)
    gift = await make_gift(coin_price=10)
    await grant_coins(app, fan.id, 15)
    await grant_coins(app, creator.id, 50)
    before = await counts(app)
    url = f"{API}/streams/{stream_id}/gifts"

    async def attempt(path: str, body: dict[str, Any], user: Any, status: int, code: str | None) -> None:
        assert_error(await client.post(path, json=body, headers=gift_headers(user)), status, code)

    await attempt(url, {"gift_id": gift["id"], "quantity": 2}, fan, 409, "insufficient_funds")
    await attempt(url, {"gift_id": gift["id"]}, creator, 409, "self_gift")
    await attempt(f"{API}/streams/{offline_id}/gifts", {"gift_id": gift["id"]}, fan, 409, "stream_not_live")
    await attempt(f"{API}/streams/{uuid.uuid4()}/gifts", {"gift_id": gift["id"]}, fan, 404, "stream_not_found")
    await attempt(url, {"gift_id": str(uuid.uuid4())}, fan, 404, "gift_not_found")
    for quantity in (0, -1, 1001, "many", None):
        await attempt(url, {"gift_id": gift["id"], "quantity": quantity}, fan, 422, "invalid_input")
    await attempt(url, {"gift_id": "nope"}, fan, 422, "invalid_input")
    await attempt(url, {}, fan, 422, "invalid_input")
    # Missing or oversized Idempotency-Key.
    assert_error(await client.post(url, json={"gift_id": gift["id"]}, headers=fan.headers), 422, "invalid_input")
    too_long = gift_headers(fan, "k" * 256)
    assert_error(await client.post(url, json={"gift_id": gift["id"]}, headers=too_long), 422, "invalid_input")
    assert_error(await client.post(url, json={"gift_id": gift["id"]}, headers={"Idempotency-Key": "a"}), 401)
    # A withdrawn gift is no longer on offer.
    withdrawn = await make_gift(coin_price=1)
    admin_headers = (await make_user(roles=["admin"])).headers
    assert (await client.delete(f"{API}/admin/gifts/{withdrawn['id']}", headers=admin_headers)).status_code == 200
    await attempt(url, {"gift_id": withdrawn["id"]}, fan, 404, "gift_not_found")
    # Blocks either way.
    blocker = await make_user()
    await grant_coins(app, blocker.id, 100)
    assert (await client.post(f"{API}/users/{creator.id}/block", headers=blocker.headers)).status_code == 200
    await attempt(url, {"gift_id": gift["id"]}, blocker, 403, "blocked")
    assert (await client.post(f"{API}/users/{fan.id}/block", headers=creator.headers)).status_code == 200
    await attempt(url, {"gift_id": gift["id"]}, fan, 403, "blocked")
    assert await counts(app) == (before[0] + 1, before[1] + 2, before[2])  # only the blocker's grant
    assert (await wallet(client, fan))["balance"] == 15
    assert (await verify(app)).ok


async def test_idempotency_key_replays_and_refuses_reuse(app, client, fan, creator, live_stream, make_gift):
    stream_id = await live_stream(creator)
    gift = await make_gift(coin_price=10)
    other = await make_gift(coin_price=1)
    await grant_coins(app, fan.id, 100)
    url = f"{API}/streams/{stream_id}/gifts"
    headers = gift_headers(fan, "key-1")
    first = await client.post(url, json={"gift_id": gift["id"], "quantity": 2}, headers=headers)
    assert first.status_code == 200, first.text
    again = await client.post(url, json={"gift_id": gift["id"], "quantity": 2}, headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    after = await counts(app)
    assert (await wallet(client, fan))["balance"] == 80
    for body in ({"gift_id": gift["id"], "quantity": 3}, {"gift_id": other["id"], "quantity": 2}):
        assert_error(await client.post(url, json=body, headers=headers), 409, "idempotency_key_reused")
    assert await counts(app) == after
    # Replays answer the same even after the stream ended.
    assert (await client.post(f"{API}/streams/{stream_id}/end", headers=creator.headers)).status_code == 200
    late = await client.post(url, json={"gift_id": gift["id"], "quantity": 2}, headers=headers)
    assert late.status_code == 200 and late.json() == first.json()
    assert (await wallet(client, fan))["balance"] == 80


async def test_parallel_gifts_spend_exactly_the_balance(app, client, fan, creator, live_stream, make_gift):
    stream_id = await live_stream(creator)
    gift = await make_gift(coin_price=10)
    await grant_coins(app, fan.id, 100)
    url = f"{API}/streams/{stream_id}/gifts"

    async def one() -> int:
        r = await client.post(url, json={"gift_id": gift["id"]}, headers=gift_headers(fan))
        assert r.status_code in (200, 409), r.text
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "insufficient_funds"
        return r.status_code

    statuses = await asyncio.gather(*(one() for _ in range(100)))
    assert statuses.count(200) == 10
    assert (await wallet(client, fan))["balance"] == 0
    assert (await wallet(client, creator))["earnings_balance"] == 70
    report = await verify(app)
    assert report.ok, report


async def test_parallel_retries_of_one_key_debit_once(app, client, fan, creator, live_stream, make_gift):
    stream_id = await live_stream(creator)
    gift = await make_gift(coin_price=10)
    await grant_coins(app, fan.id, 100)
    headers = gift_headers(fan, "same-key")
    responses = await asyncio.gather(
        *(
            client.post(f"{API}/streams/{stream_id}/gifts", json={"gift_id": gift["id"]}, headers=headers)
            for _ in range(10)
        )
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    assert (await wallet(client, fan))["balance"] == 90


async def test_leaderboard_of_past_broadcast_and_bad_input(
    app, client, fan, creator, make_user, live_stream, make_gift
):
    stream_id = await live_stream(creator)
    gift = await make_gift(coin_price=5)
    big = await make_user()
    await grant_coins(app, fan.id, 50)
    await grant_coins(app, big.id, 50)
    url = f"{API}/streams/{stream_id}/gifts"
    assert (await client.post(url, json={"gift_id": gift["id"]}, headers=gift_headers(fan))).status_code == 200
    assert (
        await client.post(url, json={"gift_id": gift["id"], "quantity": 4}, headers=gift_headers(big))
    ).status_code == 200
    board = (await client.get(f"{url}/leaderboard")).json()
    assert [(i["user"]["username"], i["coins"]) for i in board["items"]] == [(big.username, 20), (fan.username, 5)]
    broadcast_id = board["broadcast_id"]
    await client.post(f"{API}/streams/{stream_id}/end", headers=creator.headers)
    await client.post(f"{API}/streams/{stream_id}/start", headers=creator.headers)
    current = (await client.get(f"{url}/leaderboard")).json()
    assert current["items"] == [] and current["broadcast_id"] != broadcast_id
    past = (await client.get(f"{url}/leaderboard?broadcast_id={broadcast_id}&limit=1")).json()
    assert [i["coins"] for i in past["items"]] == [20]
    assert_error(await client.get(f"{url}/leaderboard?broadcast_id={uuid.uuid4()}"), 404, "broadcast_not_found")
    assert_error(await client.get(f"{url}/leaderboard?limit=0"), 422)
    assert_error(await client.get(f"{API}/streams/{uuid.uuid4()}/gifts/leaderboard"), 404, "stream_not_found")
    assert_error(await client.get(f"{API}/streams/nope/gifts/leaderboard"), 422)


async def test_service_entry_point_runs_on_committed_once(app, fan, creator, live_stream, make_gift):
    from halobuzz.accounts.models import User
    from halobuzz.economy import service

    stream_id = uuid.UUID(await live_stream(creator))
    gift = await make_gift(coin_price=2)
    await grant_coins(app, fan.id, 10)
    seen: list[Any] = []

    async def send() -> Any:
        async with app.runtime.db.session() as session:
            actor = await session.get(User, fan.id)
            return await service.send_gift(
                session=session,
                actor=actor,
                stream_id=stream_id,
                gift_id=uuid.UUID(gift["id"]),
                quantity=2,
                idempotency_key="socket-1",
                on_committed=seen.append,
            )

    first = await send()
    assert first.created and seen == [first]
    again = await send()
    assert not again.created and again.id == first.id and again.balance == 6
    assert seen == [first]
    # Rolled back: the callback never runs.
    try:
        async with app.runtime.db.session() as session:
            actor = await session.get(User, fan.id)
            await service.send_gift(
                session=session,
                actor=actor,
                stream_id=stream_id,
                gift_id=uuid.UUID(gift["id"]),
                quantity=1,
                idempotency_key="socket-2",
                on_committed=seen.append,
            )
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    assert seen == [first]
    assert (await verify(app)).ok
