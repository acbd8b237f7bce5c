"""A batch of gifts posted in bulk answers each gift exactly as posting them one by one would."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select

from halobuzz.core.errors import DomainError
from halobuzz.core.events import OutboxEvent
from halobuzz.economy import batch, service
from halobuzz.economy.fraud import FlaggedTransaction
from halobuzz.economy.models import GiftSent, LedgerEntry, LedgerTransaction
from tests.conftest import assert_error
from tests.economy.conftest import grant_coins, key_headers, verify

API = "/api/v1"


async def test_mixed_batch_answers_each_gift(app, client, make_user, make_gift, live_stream, monkeypatch):
    owner = await make_user(roles=["creator"])
    stream_id = uuid.UUID(await live_stream(owner))
    offline_id = uuid.UUID(await live_stream(owner, live=False))
    gift = await make_gift(coin_price=10)
    withdrawn = await make_gift(coin_price=1)
    admin = await make_user(roles=["admin"])
    assert (await client.delete(f"{API}/admin/gifts/{withdrawn['id']}", headers=admin.headers)).status_code == 200
    fan, poor, rival, blocker, fast = [await make_user() for _ in range(5)]
    for user, coins in ((fan, 100), (poor, 5), (rival, 100), (blocker, 100), (fast, 100)):
        await grant_coins(app, user.id, coins)
    assert (await client.post(f"{API}/users/{owner.id}/block", headers=blocker.headers)).status_code == 200
    monkeypatch.setattr(app.runtime.settings.fraud, "gifts_per_minute", 3)

    # Posted earlier, on its own: replayed from the database in the batch.
    url = f"{API}/streams/{stream_id}/gifts"
    old = await client.post(url, json={"gift_id": gift["id"]}, headers=key_headers(fan, "old"))
    assert old.status_code == 200 and old.json()["balance"] == 90, old.text
    before_batch_tx = await _count(app, LedgerTransaction)

    gift_id, withdrawn_id = uuid.UUID(gift["id"]), uuid.UUID(withdrawn["id"])

    def req(user: Any, key: str, *, quantity: int = 1, stream: uuid.UUID = stream_id, gift: uuid.UUID = gift_id):
        return batch.GiftRequest(
            actor_id=user.id,
            stream_id=stream,
            gift_id=gift,
            quantity=quantity,
            idempotency_key=key,
        )

    requests = [
        req(fan, "old"),  # 0 replay of a stored gift
        req(fan, "old", quantity=2),  # 1 stored key, other body
        req(fan, "n1"),  # 2 new: 90 -> 80
        req(fan, "n1"),  # 3 replay of 2 within the batch
        req(poor, "p1"),  # 4 5 coins for a 10-coin gift
        req(owner, "o1"),  # 5 own stream
        req(blocker, "b1"),  # 6 blocked the creator
        req(fan, "w1", gift=withdrawn_id),  # 7 withdrawn gift
        req(fan, "off", stream=offline_id),  # 8 offline stream
        req(fan, "n2", quantity=3),  # 9 new: 80 -> 50
        req(fan, "n1", quantity=4),  # 10 batch key, other body
        req(rival, "r1", quantity=6),  # 11 new: 100 -> 40, takes the throne (60 > 50)
        req(fast, "f1"),  # 12-14 new; 15 is the fourth in a minute (cap 3)
        req(fast, "f2"),
        req(fast, "f3"),
        req(fast, "f4"),
        req(fast, "f3"),  # 16 replay of 14 even after a refusal
    ]
    sizes: list[int] = []
    batcher = batch.batcher_of(app.runtime)
    run = batcher._run

    async def recording(b: list[batch.GiftRequest], locked: asyncio.Event) -> None:
        sizes.append(len(b))
        await run(b, locked)

    monkeypatch.setattr(batcher, "_run", recording)
    out = await asyncio.gather(*(batcher.send(r) for r in requests), return_exceptions=True)
    assert sizes == [len(requests)]  # one batch, one transaction

    def ok(i: int, *, balance: int, created: bool, coins: int = 10) -> service.GiftReceipt:
        r = out[i]
        assert isinstance(r, service.GiftReceipt), (i, r)
        assert (r.created, r.balance, r.coins_spent) == (created, balance, coins), (i, r)
        return r

    def refused(i: int, code: str, status: int) -> DomainError:
        e = out[i]
        assert isinstance(e, DomainError) and (e.code, e.status_code) == (code, status), (i, e)
        return e

    first = ok(0, balance=90, created=False)
    assert str(first.id) == old.json()["id"]
    refused(1, "idempotency_key_reused", 409)
    n1 = ok(2, balance=80, created=True)
    assert ok(3, balance=80, created=False).id == n1.id
    assert refused(4, "insufficient_funds", 409).details == {"available": 5, "needed": 10, "unit": "COIN"}
    refused(5, "self_gift", 409)
    refused(6, "blocked", 403)
    refused(7, "gift_not_found", 404)
    refused(8, "stream_not_live", 409)
    n2 = ok(9, balance=50, created=True, coins=30)
    refused(10, "idempotency_key_reused", 409)
    r1 = ok(11, balance=40, created=True, coins=60)
    f = [ok(12 + k, balance=90 - 10 * k, created=True) for k in range(3)]
    velocity = refused(15, "gift_velocity", 429)
    assert velocity.details["gifts_last_minute"] == 4
    assert ok(16, balance=70, created=False).id == f[2].id
    # The throne as the batch left it, announced once, with the stream's last new gift.
    assert n1.throne is None and n2.throne is None and all(x.throne is None for x in f[:2])
    assert f[2].throne is not None and f[2].throne.holder is not None
    assert f[2].throne.holder.user_id == rival.id and f[2].throne.previous_holder_id == fan.id
    assert r1.throne is None

    new = [n1, n2, r1, *f]
    assert await _count(app, LedgerTransaction) == before_batch_tx + len(new)
    async with app.runtime.db.session(write=False) as s:
        sent = (await s.scalars(select(GiftSent).where(GiftSent.transaction_id.in_([x.id for x in new])))).all()
        assert sorted((g.sender_id, g.coins) for g in sent) == sorted(
            [(fan.id, 10), (fan.id, 30), (rival.id, 60)] + [(fast.id, 10)] * 3
        )
        entries = (await s.scalars(select(LedgerEntry).where(LedgerEntry.transaction_id == n2.id))).all()
        assert sorted(e.amount for e in entries) == [-30, 9, 21]
        events = (await s.scalars(select(OutboxEvent).where(OutboxEvent.type == "gift.sent"))).all()
        by_tx = {e.data["transaction_id"]: e.data for e in events}
        assert set(by_tx) >= {str(x.id) for x in new}
        assert by_tx[str(n2.id)]["coins_spent"] == 30 and by_tx[str(n2.id)]["quantity"] == 3
        assert by_tx[str(n2.id)]["sender_id"] == str(fan.id)
        flags = (await s.scalars(select(FlaggedTransaction).where(FlaggedTransaction.user_id == fast.id))).all()
        assert [fl.kind for fl in flags] == ["gift_velocity"]
    for user, balance in ((fan, 50), (poor, 5), (rival, 40), (blocker, 100), (fast, 70)):
        assert (await client.get(f"{API}/wallet", headers=user.headers)).json()["balance"] == balance
    assert (await client.get(f"{API}/wallet", headers=owner.headers)).json()["earnings_balance"] == 140 * 7 // 10
    throne = (await client.get(f"{API}/streams/{stream_id}/throne")).json()
    assert throne["holder"]["id"] == str(rival.id)
    report = await verify(app)
    assert report.ok, report

    # The same answers through the API afterwards.
    again = await client.post(url, json={"gift_id": gift["id"], "quantity": 3}, headers=key_headers(fan, "n2"))
    assert again.status_code == 200 and again.json()["id"] == str(n2.id) and again.json()["balance"] == 50
    assert_error(await client.post(url, json={"gift_id": gift["id"]}, headers=key_headers(fan, "n2")), 409)


async def _count(app: Any, model: Any) -> int:
    async with app.runtime.db.session(write=False) as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_unique_key_clash_falls_back_to_one_by_one(app, client, make_user, make_gift, live_stream, monkeypatch):
    """A bulk write that hits a unique key (another process's commit of one of the keys) rolls
    back and the batch is posted again gift by gift: nothing twice."""
    from sqlalchemy.exc import IntegrityError

    owner = await make_user(roles=["creator"])
    stream_id = uuid.UUID(await live_stream(owner))
    gift = await make_gift(coin_price=10)
    fan, poor = await make_user(), await make_user()
    await grant_coins(app, fan.id, 100)
    await grant_coins(app, poor.id, 5)
    bulk = service.send_gifts
    calls: list[int] = []

    async def clashing(**kwargs: Any) -> Any:
        calls.append(len(kwargs["orders"]))
        await bulk(**kwargs)  # writes everything, then the clash
        raise IntegrityError("INSERT INTO ledger_transaction", None, Exception("actor_idempotency_key"))

    monkeypatch.setattr(service, "send_gifts", clashing)
    requests = [
        batch.GiftRequest(
            actor_id=u.id,
            stream_id=stream_id,
            gift_id=uuid.UUID(gift["id"]),
            quantity=q,
            idempotency_key=k,
        )
        for u, k, q in ((fan, "a", 1), (poor, "b", 1), (fan, "a", 1), (fan, "c", 2))
    ]
    batcher = batch.batcher_of(app.runtime)
    out = await asyncio.gather(*(batcher.send(r) for r in requests), return_exceptions=True)
    assert calls == [4]
    a, b, a2, c = out
    assert isinstance(a, service.GiftReceipt) and a.created and a.balance == 90
    assert isinstance(b, DomainError) and b.code == "insufficient_funds"
    assert isinstance(a2, service.GiftReceipt) and not a2.created and a2.id == a.id
    assert isinstance(c, service.GiftReceipt) and c.created and c.balance == 70
    assert await _count(app, GiftSent) == 2
    assert (await client.get(f"{API}/wallet", headers=fan.headers)).json()["balance"] == 70
    report = await verify(app)
    assert report.ok, report


async def test_two_batches_in_flight_share_a_key(app, make_user, make_gift, live_stream, monkeypatch):
    """While one batch holds the locks the next makes its unlocked reads (PostgreSQL): a retry of
    a gift still being posted by the first batch is not seen by those reads, so the second
    batch's bulk write hits the key's unique index, rolls back, and answers the first receipt."""
    from sqlalchemy import text

    if app.runtime.db.is_sqlite:
        assert batch.batcher_of(app.runtime).in_flight == 1  # one writer: batches one at a time
        return
    owner = await make_user(roles=["creator"])
    stream_id = uuid.UUID(await live_stream(owner))
    gift = await make_gift(coin_price=10)
    fan, other = await make_user(), await make_user()
    await grant_coins(app, fan.id, 100)
    await grant_coins(app, other.id, 100)
    bulk = service.send_gifts
    holding, release = asyncio.Event(), asyncio.Event()
    calls: list[int] = []

    async def first_held(**kwargs: Any) -> Any:
        calls.append(len(kwargs["orders"]))
        if len(calls) == 1:  # the first batch, its locks taken
            holding.set()
            await release.wait()
        return await bulk(**kwargs)

    monkeypatch.setattr(service, "send_gifts", first_held)

    def req(user: Any, key: str) -> batch.GiftRequest:
        return batch.GiftRequest(
            actor_id=user.id, stream_id=stream_id, gift_id=uuid.UUID(gift["id"]), quantity=1, idempotency_key=key
        )

    batcher = batch.batcher_of(app.runtime)
    first = asyncio.create_task(batcher.send(req(fan, "same")))
    await asyncio.wait_for(holding.wait(), 30)
    second = asyncio.gather(batcher.send(req(fan, "same")), batcher.send(req(other, "own")))

    async def waiting_on_locks() -> int:
        async with app.runtime.db.session(write=False) as s:
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return int(await s.scalar(text(query)) or 0)

    for _ in range(600):  # the second batch has made its reads and waits for the first one's locks
        if await waiting_on_locks():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the second batch never waited for the locks")
    release.set()
    a = await asyncio.wait_for(first, 30)
    a2, b = await asyncio.wait_for(second, 30)
    assert calls == [1, 2]  # the bulk write of the second batch ran, then hit the unique key
    assert a.created and a.balance == 90
    assert not a2.created and a2.id == a.id and a2.balance == 90
    assert b.created and b.balance == 90
    assert await _count(app, GiftSent) == 2
    report = await verify(app)
    assert report.ok, report


async def test_waiting_gifts_are_shared_between_free_slots(app, make_user, make_gift, live_stream, monkeypatch):
    """With no batch running and two slots free, many waiting gifts go in two batches (the second
    starts once the first holds its locks), fewer in one; each gift is answered and posted once."""
    owner = await make_user(roles=["creator"])
    stream_id = uuid.UUID(await live_stream(owner))
    gift = await make_gift(coin_price=10)
    fans = [await make_user() for _ in range(4)]
    for fan in fans:
        await grant_coins(app, fan.id, 200)
    batcher = batch.batcher_of(app.runtime)
    monkeypatch.setattr(batcher, "in_flight", 2)
    sizes: list[int] = []
    run = batcher._run

    async def recording(b: list[batch.GiftRequest], locked: asyncio.Event) -> None:
        sizes.append(len(b))
        await run(b, locked)

    monkeypatch.setattr(batcher, "_run", recording)

    def burst(n: int, tag: str) -> list[batch.GiftRequest]:
        return [
            batch.GiftRequest(
                actor_id=fans[i % 4].id,
                stream_id=stream_id,
                gift_id=uuid.UUID(gift["id"]),
                quantity=1,
                idempotency_key=f"{tag}{i}",
            )
            for i in range(n)
        ]

    few = await asyncio.gather(*(batcher.send(r) for r in burst(batch.SPLIT_FROM - 1, "few")))
    many = await asyncio.gather(*(batcher.send(r) for r in burst(batch.SPLIT_FROM + 4, "many")))
    half = (batch.SPLIT_FROM + 4) // 2
    assert sizes == [batch.SPLIT_FROM - 1, half, half]
    assert all(r.created for r in [*few, *many])
    assert await _count(app, GiftSent) == 2 * batch.SPLIT_FROM + 3
    for fan in fans:
        async with app.runtime.db.session(write=False) as s:
            spent = await s.scalar(select(func.count()).select_from(GiftSent).where(GiftSent.sender_id == fan.id))
        assert spent in {10, 11}
    assert (await verify(app)).ok
