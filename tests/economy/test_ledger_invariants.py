"""Ledger invariants under random operations: a Hypothesis state machine over grants, gifts,
purchases, refunds, payouts and reversals, and (PostgreSQL) 10,000 concurrent random transfers.

After every step: each transaction's entries sum to zero per unit, no user balance is negative and
every balance equals the replay of its entries (``verify_ledger``)."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, func, select

from halobuzz.config import PayoutsSettings
from halobuzz.core.db import Database
from halobuzz.core.errors import DomainError
from halobuzz.economy import fraud, ledger, payouts
from halobuzz.economy.models import COIN, CoinPackage, LedgerAccount, LedgerEntry, LedgerTransaction
from halobuzz.economy.payouts_models import Payout
from halobuzz.kyc.models import KycSubmission
from halobuzz.payments import refunds
from halobuzz.payments import service as payments_service
from halobuzz.payments.models import PaymentEvent, PaymentIntent

USERS = 3
SUCCEEDED: dict[str, int] = {}
FAILED: dict[tuple[str, str], int] = {}


class _Actor:
    def __init__(self, user_id: uuid.UUID) -> None:
        self.id = user_id


async def _reset(db: Database) -> None:
    async with db.session() as s:
        for model in (fraud.FlaggedTransaction, refunds.PaymentRefund, Payout, PaymentEvent):
            await s.execute(delete(model))
        await s.execute(delete(PaymentIntent))
        await s.execute(delete(LedgerEntry))
        await s.execute(delete(LedgerTransaction).where(LedgerTransaction.reverses_id.is_not(None)))
        await s.execute(delete(LedgerTransaction))
        await s.execute(delete(LedgerAccount))


def make_machine(url: str, user_ids: list[uuid.UUID], admin_id: uuid.UUID, package_id: uuid.UUID) -> type:
    class LedgerMachine(RuleBasedStateMachine):
        intents = Bundle("intents")
        gifts = Bundle("gifts")
        payout_ids = Bundle("payouts")

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.db = Database(url, pool_size=2)

        def run(self, coro: Any) -> Any:
            return self.loop.run_until_complete(coro)

        def kept(self, coro: Any) -> Any:
            """Run an operation whose result goes into a bundle; a refused one adds nothing."""
            result = self.run(coro)
            return multiple() if result is None else result

        def teardown(self) -> None:
            self.run(self.db.dispose())
            self.loop.close()

        @initialize()
        def reset(self) -> None:
            self.run(_reset(self.db))

            async def seed(s: Any) -> None:  # every user starts with coins and earnings
                for user_id in user_ids:
                    await ledger.post_transaction(
                        session=s,
                        kind="promotion",
                        legs=[
                            ledger.Leg(ledger.platform("platform_promotions"), -1500),
                            ledger.Leg(ledger.user_coins(user_id), 1000),
                            ledger.Leg(ledger.creator_earnings(user_id), 500),
                        ],
                    )

            self.run(self._tx(seed, "seed"))

        async def _tx(self, fn: Any, name: str) -> Any:
            try:
                async with self.db.session() as s:
                    result = await fn(s)
            except DomainError as exc:
                FAILED[(name, exc.code)] = FAILED.get((name, exc.code), 0) + 1
                return None
            SUCCEEDED[name] = SUCCEEDED.get(name, 0) + 1
            return result

        @rule(user=st.integers(0, USERS - 1), coins=st.integers(100, 2000))
        def grant(self, user: int, coins: int) -> None:
            async def go(s: Any) -> None:
                await ledger.post_transaction(
                    session=s,
                    kind="promotion",
                    legs=[
                        ledger.Leg(ledger.platform("platform_promotions"), -coins),
                        ledger.Leg(ledger.user_coins(user_ids[user]), coins),
                    ],
                )

            self.run(self._tx(go, "grant"))

        @rule(
            target=gifts,
            sender=st.integers(0, USERS - 1),
            receiver=st.integers(0, USERS - 1),
            coins=st.integers(1, 100),
        )
        def gift(self, sender: int, receiver: int, coins: int) -> Any:
            creator = coins * 7 // 10

            async def go(s: Any) -> Any:
                legs = [ledger.Leg(ledger.user_coins(user_ids[sender]), -coins)]
                if creator:
                    legs.append(ledger.Leg(ledger.creator_earnings(user_ids[receiver]), creator))
                legs.append(ledger.Leg(ledger.platform("platform_revenue"), coins - creator))
                return (await ledger.post_transaction(session=s, kind="gift", legs=legs)).transaction.id

            return self.kept(self._tx(go, "gift"))

        @rule(target=intents, user=st.integers(0, USERS - 1), coins=st.integers(1, 1000))
        def purchase(self, user: int, coins: int) -> Any:
            async def go(s: Any) -> Any:
                intent = PaymentIntent(
                    user_id=user_ids[user],
                    package_id=package_id,
                    provider="sandbox",
                    currency="NPR",
                    amount=coins * 2,
                    coins=coins,
                )
                s.add(intent)
                await s.flush()
                await payments_service.credit_intent(
                    session=s,
                    intent_id=intent.id,
                    provider="sandbox",
                    event_id=f"e:{intent.id}",
                    event_type="test",
                    amount=intent.amount,
                    currency="NPR",
                )
                return intent.id

            return self.kept(self._tx(go, "purchase"))

        @rule(intent=intents)
        def refund(self, intent: Any) -> None:
            if intent is not None:
                self.run(
                    self._tx(
                        lambda s: refunds.apply_refund(session=s, intent_id=intent, source="admin", reason="t"),
                        "refund",
                    )
                )

        @rule(target=payout_ids, user=st.integers(0, USERS - 1), coins=st.integers(1, 20))
        def payout_request(self, user: int, coins: int) -> Any:
            async def go(s: Any) -> Any:
                p, _ = await payouts.request_payout(
                    session=s,
                    actor=_Actor(user_ids[user]),
                    settings=PayoutsSettings(min_coins=1),
                    coins=coins,
                    currency="NPR",
                    method="esewa",
                    destination="98",
                    idempotency_key=uuid.uuid4().hex,
                )
                return p.id

            return self.kept(self._tx(go, "payout_request"))

        @rule(payout=payout_ids)
        def payout_approve(self, payout: Any) -> None:
            admin = _Actor(admin_id)
            self.run(self._tx(lambda s: payouts.approve_payout(session=s, admin=admin, payout_id=payout), "approve"))

        @rule(payout=payout_ids)
        def payout_reject(self, payout: Any) -> None:
            admin = _Actor(admin_id)
            self.run(
                self._tx(lambda s: payouts.reject_payout(session=s, admin=admin, payout_id=payout, reason=""), "reject")
            )

        @rule(tx=gifts)
        def reverse(self, tx: Any) -> None:
            if tx is not None:
                self.run(
                    self._tx(
                        lambda s: ledger.reverse_transaction(session=s, transaction_id=tx, actor_id=None, reason="t"),
                        "reverse",
                    )
                )

        @invariant()
        def consistent(self) -> None:
            async def check() -> None:
                async with self.db.session(write=False) as s:
                    report = await ledger.verify_ledger(s)
                    assert report.ok, report
                    totals = dict(
                        (
                            await s.execute(
                                select(LedgerAccount.unit, func.sum(LedgerAccount.balance)).group_by(LedgerAccount.unit)
                            )
                        ).all()
                    )
                    assert all(int(v) == 0 for v in totals.values()), totals
                    lowest = await s.scalar(
                        select(func.min(LedgerAccount.balance)).where(LedgerAccount.owner_id.is_not(None))
                    )
                    assert lowest is None or lowest >= 0

            self.run(check())

    return LedgerMachine


async def test_ledger_state_machine(app, make_user, database_url):
    users = [await make_user() for _ in range(USERS)]
    admin = await make_user(roles=["admin"])
    async with app.runtime.db.session() as s:
        package = CoinPackage(name=f"p-{uuid.uuid4().hex[:6]}", coins=10, bonus_coins=0, prices={"NPR": 1000})
        s.add(package)
        for u in users:
            s.add(KycSubmission(user_id=u.id, status="approved"))
        await s.flush()
        package_id = package.id
    machine = make_machine(database_url, [u.id for u in users], admin.id, package_id)
    conf = settings(
        max_examples=int(os.environ.get("LEDGER_MACHINE_EXAMPLES", "15")),
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    SUCCEEDED.clear()
    FAILED.clear()
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=conf)
    # Every kind of operation really ran (not only refusals).
    assert set(SUCCEEDED) >= {"grant", "gift", "purchase", "refund", "payout_request"}, (SUCCEEDED, FAILED)
    assert SUCCEEDED.get("approve", 0) + SUCCEEDED.get("reject", 0) > 0, (SUCCEEDED, FAILED)


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"), reason="concurrent transfers need PostgreSQL"
)
async def test_concurrent_random_transfers_keep_invariants(app, make_user):
    """10,000 random transfers between 20 users, 64 at a time: overdrafts are refused, nothing else is lost."""
    users = [await make_user() for _ in range(20)]
    db = app.runtime.db
    async with db.session() as s:
        for u in users:
            await ledger.post_transaction(
                session=s,
                kind="promotion",
                legs=[
                    ledger.Leg(ledger.platform("platform_promotions"), -1000),
                    ledger.Leg(ledger.user_coins(u.id), 1000),
                ],
            )
    rng = random.Random(7)
    plan = [(rng.choice(users).id, rng.choice(users).id, rng.randint(1, 300)) for _ in range(10_000)]
    plan = [(a, b, n) for a, b, n in plan if a != b]
    refused = 0
    gate = asyncio.Semaphore(64)

    async def transfer(a: uuid.UUID, b: uuid.UUID, n: int) -> None:
        nonlocal refused
        async with gate:
            try:
                async with db.session() as s:
                    await ledger.post_transaction(
                        session=s,
                        kind="transfer",
                        legs=[ledger.Leg(ledger.user_coins(a), -n), ledger.Leg(ledger.user_coins(b), n)],
                    )
            except ledger.InsufficientFunds:
                refused += 1

    await asyncio.gather(*(transfer(*p) for p in plan))
    async with db.session(write=False) as s:
        report = await ledger.verify_ledger(s)
        assert report.ok, report
        held = await s.scalar(
            select(func.sum(LedgerAccount.balance)).where(
                LedgerAccount.unit == COIN, LedgerAccount.owner_id.is_not(None)
            )
        )
        transfers = await s.scalar(
            select(func.count()).select_from(LedgerTransaction).where(LedgerTransaction.kind == "transfer")
        )
    assert held == 20 * 1000
    assert transfers == len(plan) - refused
