"""Gift velocity caps: a burst over the per-minute caps is refused (429), changes nothing and is flagged."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import assert_error, client_for
from tests.economy.conftest import grant_coins, verify

API = "/api/v1"


async def _live_stream_with_gifts(app: Any, client: Any, make_user: Any, *prices: int) -> Any:
    """An admin, a fan with 5,000 coins, a live stream and gifts at these prices."""
    admin, fan, creator = await make_user(roles=["admin"]), await make_user(), await make_user(roles=["creator"])
    stream = (await client.post(f"{API}/streams", json={"title": "t"}, headers=creator.headers)).json()["id"]
    assert (await client.post(f"{API}/streams/{stream}/start", headers=creator.headers)).status_code == 200
    gifts = []
    for i, price in enumerate(prices):
        body = {"name": f"g{i}", "coin_price": price}
        gifts.append((await client.post(f"{API}/admin/gifts", json=body, headers=admin.headers)).json())
    await grant_coins(app, fan.id, 5000)
    return admin, fan, stream, gifts


async def test_gift_velocity_caps(app_factory, make_user):
    app = await app_factory(fraud={"gifts_per_minute": 3, "gift_coins_per_minute": 1000})
    async with client_for(app) as client:
        admin, fan, stream, (small, big) = await _live_stream_with_gifts(app, client, make_user, 10, 600)

        async def send(gift: dict[str, Any], key: str | None = None) -> Any:
            return await client.post(
                f"{API}/streams/{stream}/gifts",
                json={"gift_id": gift["id"], "quantity": 1},
                headers={**fan.headers, "Idempotency-Key": key or uuid.uuid4().hex},
            )

        assert (await send(big, "k1")).status_code == 200
        err = assert_error(await send(big), 429, "gift_velocity")
        assert err["details"]["coins_last_minute"] == 1200
        assert (await send(small)).status_code == 200
        assert (await send(small)).status_code == 200
        assert_error(await send(small), 429, "gift_velocity")  # the fourth gift in a minute
        assert (await send(big, "k1")).status_code == 200  # a retry of a sent gift is not a new gift
        wallet = (await client.get(f"{API}/wallet", headers=fan.headers)).json()
        assert wallet["balance"] == 5000 - 600 - 20
        r = await client.get(f"{API}/admin/economy/flags", headers=admin.headers)
        assert [f["kind"] for f in r.json()["items"]] == ["gift_velocity", "gift_velocity"]
        assert all(f["user_id"] == str(fan.id) for f in r.json()["items"])
        assert (await verify(app)).ok


async def test_velocity_counts_the_last_minute_of_gifts_on_every_path(app_factory, make_user):
    from datetime import timedelta

    from sqlalchemy import func, select

    from halobuzz.accounts.models import User
    from halobuzz.core.clock import utcnow
    from halobuzz.core.errors import TooManyRequests
    from halobuzz.economy import fraud, service

    app = await app_factory(fraud={"gifts_per_minute": 3})
    async with client_for(app) as client:
        _, fan, stream, (gift,) = await _live_stream_with_gifts(app, client, make_user, 10)
        now = utcnow()
        async with app.runtime.db.session() as s:
            # A burst that left the window no longer counts; a gift 30 s ago does.
            old = fraud.velocity_slot(now - timedelta(seconds=75))
            s.add(fraud.GiftVelocity(sender_id=fan.id, slot=old, gifts=50, coins=500))
            recent = fraud.velocity_slot(now - timedelta(seconds=30))
            s.add(fraud.GiftVelocity(sender_id=fan.id, slot=recent, gifts=1, coins=10))

        async def over_http() -> Any:
            return await client.post(
                f"{API}/streams/{stream}/gifts",
                json={"gift_id": gift["id"], "quantity": 1},
                headers={**fan.headers, "Idempotency-Key": uuid.uuid4().hex},
            )

        async def one_by_one() -> None:  # as a batch does after a key clash
            async with app.runtime.db.session() as s:
                actor = await s.get(User, fan.id)
                assert actor is not None
                await service.send_gift(
                    session=s,
                    actor=actor,
                    stream_id=uuid.UUID(stream),
                    gift_id=uuid.UUID(gift["id"]),
                    quantity=1,
                    idempotency_key=uuid.uuid4().hex,
                    guard=lambda: fraud.check_gift_velocity(
                        session=s, db=app.runtime.db, settings=app.runtime.settings.fraud, sender_id=fan.id
                    ),
                )

        assert (await over_http()).status_code == 200  # the second in the window
        await one_by_one()  # the third
        err = assert_error(await over_http(), 429, "gift_velocity")
        assert err["details"]["gifts_last_minute"] == 4
        try:
            await one_by_one()
            raise AssertionError("the fourth gift of the minute went through")
        except TooManyRequests as exc:
            assert exc.code == "gift_velocity"
        async with app.runtime.db.session(write=False) as s:
            counted = await s.scalar(select(func.sum(fraud.GiftVelocity.gifts)).where(fraud.GiftVelocity.slot > old))
        assert counted == 3  # the refused gifts were rolled back with their counts
        wallet = (await client.get(f"{API}/wallet", headers=fan.headers)).json()
        assert wallet["balance"] == 5000 - 20
        assert (await verify(app)).ok
