"""The ledger module itself: random transfers keep the invariants, refused postings write
nothing, idempotent retries, reversals, and verify_ledger catching a tampered balance."""

from __future__ import annotations

import random
import uuid

import pytest
from sqlalchemy import update

from halobuzz.core.errors import Conflict, InvalidInput
from halobuzz.economy import ledger
from halobuzz.economy.models import LedgerAccount
from tests.economy.conftest import grant_coins, verify


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_transfers_keep_invariants(app, make_user, seed):
    rng = random.Random(seed)
    users = [await make_user() for _ in range(4)]
    expected = {u.id: 0 for u in users}
    for u in users:
        amount = rng.randint(0, 50)
        if amount:
            await grant_coins(app, u.id, amount)
            expected[u.id] += amount
    for step in range(40):
        src, dst = rng.sample(users, 2)
        amount = rng.randint(1, 30)
        key = f"step-{rng.randint(0, 10)}"  # keys repeat: retries must not post twice
        async with app.runtime.db.session() as session:
            try:
                posted = await ledger.post_transaction(
                    session=session,
                    kind="transfer",
                    legs=[
                        ledger.Leg(ledger.user_coins(src.id), -amount),
                        ledger.Leg(ledger.user_coins(dst.id), amount),
                    ],
                    actor_id=src.id,
                    idempotency_key=key,
                    meta={"step": step},
                )
            except ledger.InsufficientFunds:
                assert expected[src.id] < amount
                continue
        if posted.created:
            assert expected[src.id] >= amount
            expected[src.id] -= amount
            expected[dst.id] += amount
            assert posted.balances[ledger.user_coins(src.id).key] == expected[src.id]
    async with app.runtime.db.session(write=False) as session:
        for u in users:
            balance = await session.scalar(
                LedgerAccount.__table__.select()
                .with_only_columns(LedgerAccount.balance)
                .where(LedgerAccount.key == ledger.user_coins(u.id).key)
            )
            assert int(balance or 0) == expected[u.id]
    report = await verify(app)
    assert report.ok, report
    assert sum(expected.values()) >= 0


async def test_unbalanced_and_empty_postings_are_refused(app, make_user):
    user = await make_user()
    async with app.runtime.db.session() as session:
        with pytest.raises(InvalidInput):
            await ledger.post_transaction(session=session, kind="x", legs=[ledger.Leg(ledger.user_coins(user.id), 5)])
        with pytest.raises(InvalidInput):
            await ledger.post_transaction(session=session, kind="x", legs=[])
        with pytest.raises(InvalidInput):
            await ledger.post_transaction(
                session=session,
                kind="x",
                legs=[ledger.Leg(ledger.user_coins(user.id), 5), ledger.Leg(ledger.platform("coin_mint", "NPR"), -5)],
            )
    assert (await verify(app)).accounts_checked == 0


async def test_reversal_restores_balances_once(app, make_user):
    a, b = await make_user(), await make_user()
    await grant_coins(app, a.id, 30)
    async with app.runtime.db.session() as session:
        posted = await ledger.post_transaction(
            session=session,
            kind="transfer",
            legs=[ledger.Leg(ledger.user_coins(a.id), -30), ledger.Leg(ledger.user_coins(b.id), 30)],
        )
    async with app.runtime.db.session() as session:
        back = await ledger.reverse_transaction(
            session=session, transaction_id=posted.transaction.id, actor_id=None, reason="chargeback"
        )
        assert back.balances == {ledger.user_coins(a.id).key: 30, ledger.user_coins(b.id).key: 0}
        assert back.transaction.reverses_id == posted.transaction.id
    async with app.runtime.db.session() as session:
        with pytest.raises(Conflict):
            await ledger.reverse_transaction(
                session=session, transaction_id=posted.transaction.id, actor_id=None, reason="again"
            )
        with pytest.raises(InvalidInput):
            await ledger.reverse_transaction(session=session, transaction_id=uuid.uuid4(), actor_id=None, reason="x")
    assert (await verify(app)).ok


async def test_verify_reports_tampering(app, client, make_user):
    user = await make_user()
    admin = await make_user(roles=["admin"])
    await grant_coins(app, user.id, 10)
    r = await client.get("/api/v1/admin/ledger/reconciliation", headers=admin.headers)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert r.json()["accounts_checked"] == 2 and r.json()["coins_in_wallets"] == 10
    async with app.runtime.db.session() as session:
        await session.execute(
            update(LedgerAccount).where(LedgerAccount.key == ledger.user_coins(user.id).key).values(balance=11)
        )
    body = (await client.get("/api/v1/admin/ledger/reconciliation", headers=admin.headers)).json()
    assert body["ok"] is False
    assert body["mismatches"] == [{"account": f"user_coins:{user.id}", "balance": 11, "entries_sum": 10}]
    r = await client.get("/api/v1/admin/ledger/reconciliation", headers=user.headers)
    assert r.status_code == 403
