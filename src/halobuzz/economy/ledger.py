"""The double-entry ledger: the only code that changes balances (docs/ledger.md).

``post_transaction`` locks the involved accounts in one global order (by account id) with
``SELECT … FOR UPDATE`` on PostgreSQL — on SQLite write transactions are already serialized by
``BEGIN IMMEDIATE`` — checks balances, inserts the transaction and its entries, and moves each
balance with ``balance = balance + :delta``. The caller's request owns the database transaction.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.core.clock import utcnow
from halobuzz.core.db import in_list
from halobuzz.core.errors import Conflict, InvalidInput
from halobuzz.core.ids import uuid7
from halobuzz.economy.models import COIN, LedgerAccount, LedgerEntry, LedgerTransaction


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """How to find (or lazily create) one ledger account."""

    key: str
    kind: str
    unit: str
    owner_id: uuid.UUID | None = None
    allow_negative: bool = False


def user_coins(user_id: uuid.UUID) -> AccountSpec:
    return AccountSpec(f"user_coins:{user_id}", "user_coins", COIN, user_id)


def creator_earnings(user_id: uuid.UUID) -> AccountSpec:
    return AccountSpec(f"creator_earnings:{user_id}", "creator_earnings", COIN, user_id)


def platform(kind: str, unit: str = COIN) -> AccountSpec:
    """A platform-owned account (revenue, promotions, coin mint, provider clearing); may go negative."""
    return AccountSpec(f"{kind}:{unit}", kind, unit, None, allow_negative=True)


def provider_clearing(currency: str) -> AccountSpec:
    return AccountSpec(f"provider_clearing:{currency}", f"provider_clearing:{currency}", currency, None, True)


@dataclass(frozen=True, slots=True)
class Leg:
    account: AccountSpec
    amount: int


@dataclass(frozen=True, slots=True)
class Posted:
    transaction: LedgerTransaction
    created: bool
    balances: dict[str, int]


async def ensure_accounts(*, session: AsyncSession, specs: Sequence[AccountSpec]) -> dict[str, uuid.UUID]:
    """The ids of these accounts, creating missing ones (concurrent creators converge on one row)."""
    keys = sorted({s.key for s in specs})
    found = dict(
        (await session.execute(select(LedgerAccount.key, LedgerAccount.id).where(LedgerAccount.key.in_(keys)))).all()
    )
    missing = [s for s in {s.key: s for s in specs}.values() if s.key not in found]
    if missing:
        dialect = session.get_bind().dialect.name
        ins = pg_insert if dialect == "postgresql" else sqlite_insert
        rows = [
            {
                "id": uuid7(),
                "key": s.key,
                "kind": s.kind,
                "unit": s.unit,
                "owner_id": s.owner_id,
                "allow_negative": s.allow_negative,
                "balance": 0,
                "version": 0,
            }
            for s in sorted(missing, key=lambda s: s.key)
        ]
        await session.execute(ins(LedgerAccount).values(rows).on_conflict_do_nothing(index_elements=["key"]))
        found = dict(
            (
                await session.execute(select(LedgerAccount.key, LedgerAccount.id).where(LedgerAccount.key.in_(keys)))
            ).all()
        )
    return found


async def find_transaction(
    *, session: AsyncSession, actor_id: uuid.UUID, idempotency_key: str
) -> LedgerTransaction | None:
    """The transaction an actor already posted under this idempotency key, if any."""
    return await session.scalar(
        select(LedgerTransaction).where(
            LedgerTransaction.actor_id == actor_id, LedgerTransaction.idempotency_key == idempotency_key
        )
    )


async def post_transaction(
    *,
    session: AsyncSession,
    kind: str,
    legs: Sequence[Leg],
    actor_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    reverses_id: uuid.UUID | None = None,
    meta: dict[str, Any] | None = None,
) -> Posted:
    """Post one balanced transaction atomically; a retry with the same (actor, key) returns the first.

    Locks every involved account (ordered by id, ``FOR UPDATE``) before the idempotency check and
    the balance checks, so concurrent postings on one account serialize and never deadlock.
    Raises ``InsufficientFunds`` (nothing written) when an account that may not go negative would.
    """
    totals: dict[str, int] = defaultdict(int)
    deltas: dict[str, int] = defaultdict(int)
    specs: dict[str, AccountSpec] = {}
    for leg in legs:
        if leg.amount == 0:
            raise InvalidInput("a ledger leg moves a non-zero amount", code="invalid_posting")
        totals[leg.account.unit] += leg.amount
        deltas[leg.account.key] += leg.amount
        specs[leg.account.key] = leg.account
    if not legs or any(totals.values()):
        raise InvalidInput("a ledger transaction's legs must sum to zero per unit", code="unbalanced_posting")
    if idempotency_key is not None and actor_id is None:
        raise InvalidInput("an idempotency key needs an actor", code="invalid_posting")

    ids = await ensure_accounts(session=session, specs=list(specs.values()))
    locked = (
        await session.scalars(
            select(LedgerAccount)
            .where(LedgerAccount.id.in_(ids.values()))
            .order_by(LedgerAccount.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    accounts = {a.key: a for a in locked}

    if idempotency_key is not None and actor_id is not None:
        existing = await find_transaction(session=session, actor_id=actor_id, idempotency_key=idempotency_key)
        if existing is not None:
            return Posted(existing, False, {k: a.balance for k, a in accounts.items()})

    for key, delta in deltas.items():
        account = accounts[key]
        if account.unit != specs[key].unit:
            raise InvalidInput(f"account {key} holds {account.unit}, not {specs[key].unit}", code="unit_mismatch")
        if delta < 0 and not account.allow_negative and account.balance + delta < 0:
            raise InsufficientFunds(
                f"not enough {account.unit}: {account.balance} available, {-delta} needed",
                details={"available": account.balance, "needed": -delta, "unit": account.unit},
            )

    tx = LedgerTransaction(
        id=uuid7(),
        kind=kind,
        actor_id=actor_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        reverses_id=reverses_id,
        meta=meta or {},
    )
    session.add(tx)
    await session.flush()
    balances: dict[str, int] = {}
    for key in sorted(deltas, key=lambda k: accounts[k].id):
        account = accounts[key]
        new_balance = (
            await session.execute(
                update(LedgerAccount)
                .where(LedgerAccount.id == account.id)
                .values(balance=LedgerAccount.balance + deltas[key], version=LedgerAccount.version + 1)
                .returning(LedgerAccount.balance)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one()
        balances[key] = int(new_balance)
        session.add(
            LedgerEntry(
                id=uuid7(),
                transaction_id=tx.id,
                account_id=account.id,
                amount=deltas[key],
                unit=account.unit,
                balance_after=int(new_balance),
            )
        )
    await session.flush()
    return Posted(tx, True, balances)


@dataclass(frozen=True, slots=True)
class LockedAccount:
    id: uuid.UUID
    key: str
    unit: str
    balance: int
    allow_negative: bool


_LOCK_BY_KEY = (
    select(LedgerAccount.id, LedgerAccount.key, LedgerAccount.unit, LedgerAccount.balance, LedgerAccount.allow_negative)
    .where(in_list(LedgerAccount.key, "keys"))
    .order_by(LedgerAccount.id)
    .with_for_update()
)


async def lock_accounts(*, session: AsyncSession, specs: Sequence[AccountSpec]) -> dict[str, LockedAccount]:
    """Lock these accounts in the one global order (by id), creating missing ones first; their balances.

    One ``SELECT … FOR UPDATE`` by key when every account exists (the usual case)."""
    keys = sorted({s.key for s in specs})
    rows = (await session.execute(_LOCK_BY_KEY, {"keys": keys})).all()
    if len(rows) < len(keys):
        await ensure_accounts(session=session, specs=specs)
        rows = (await session.execute(_LOCK_BY_KEY, {"keys": keys})).all()
    return {key: LockedAccount(id_, key, unit, int(balance), bool(neg)) for id_, key, unit, balance, neg in rows}


class BulkPosting:
    """Many transactions checked in Python against balances read under the accounts' locks
    (``lock_accounts``), then written in a few statements by ``write``: one multi-row insert for
    the transactions, one for their entries, one ``balance = balance + Σ`` update per account.

    ``check`` and ``add`` apply ``post_transaction``'s rules (balanced legs, units, no forbidden
    negative balance) in order, each against the balances the transactions added before it left;
    a refused posting changes nothing. The caller holds the locks of every account it posts to.
    """

    def __init__(self, accounts: dict[str, LockedAccount]) -> None:
        self.accounts = accounts
        self.balances = {key: a.balance for key, a in accounts.items()}
        self._transactions: list[dict[str, Any]] = []
        self._entries: list[dict[str, Any]] = []
        self._moves: dict[str, list[int]] = {}

    def check(self, legs: Sequence[Leg]) -> dict[str, int]:
        """The deltas per account key of these legs, or the error ``post_transaction`` would raise."""
        totals: dict[str, int] = defaultdict(int)
        deltas: dict[str, int] = defaultdict(int)
        for leg in legs:
            if leg.amount == 0:
                raise InvalidInput("a ledger leg moves a non-zero amount", code="invalid_posting")
            totals[leg.account.unit] += leg.amount
            deltas[leg.account.key] += leg.amount
        if not legs or any(totals.values()):
            raise InvalidInput("a ledger transaction's legs must sum to zero per unit", code="unbalanced_posting")
        for leg in legs:
            account = self.accounts.get(leg.account.key)
            if account is None:
                raise InvalidInput(f"account {leg.account.key} is not locked for this posting", code="invalid_posting")
            if account.unit != leg.account.unit:
                raise InvalidInput(
                    f"account {leg.account.key} holds {account.unit}, not {leg.account.unit}", code="unit_mismatch"
                )
        for key, delta in deltas.items():
            account, balance = self.accounts[key], self.balances[key]
            if delta < 0 and not account.allow_negative and balance + delta < 0:
                raise InsufficientFunds(
                    f"not enough {account.unit}: {balance} available, {-delta} needed",
                    details={"available": balance, "needed": -delta, "unit": account.unit},
                )
        return dict(deltas)

    def add(
        self,
        *,
        kind: str,
        legs: Sequence[Leg],
        actor_id: uuid.UUID | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> tuple[uuid.UUID, dict[str, int]]:
        """Plan one transaction (refused like ``post_transaction``); its id and the balances after it."""
        if idempotency_key is not None and actor_id is None:
            raise InvalidInput("an idempotency key needs an actor", code="invalid_posting")
        deltas = self.check(legs)
        now = utcnow()
        tx_id = uuid7()
        self._transactions.append(
            {
                "id": tx_id,
                "created_at": now,
                "kind": kind,
                "actor_id": actor_id,
                "idempotency_key": idempotency_key,
                "request_hash": request_hash,
                "reverses_id": None,
                "meta": meta or {},
            }
        )
        after: dict[str, int] = {}
        for key in sorted(deltas, key=lambda k: self.accounts[k].id):
            account = self.accounts[key]
            self.balances[key] += deltas[key]
            after[key] = self.balances[key]
            self._moves.setdefault(key, []).append(deltas[key])
            self._entries.append(
                {
                    "id": uuid7(),
                    "created_at": now,
                    "transaction_id": tx_id,
                    "account_id": account.id,
                    "amount": deltas[key],
                    "unit": account.unit,
                    "balance_after": after[key],
                }
            )
        return tx_id, after

    @property
    def transaction_count(self) -> int:
        return len(self._transactions)

    async def write(self, session: AsyncSession) -> None:
        """Insert the planned transactions and entries and move the balances (once per account)."""
        if not self._transactions:
            return
        # Core inserts of the tables (not the ORM's bulk insert): no per-row attribute processing.
        await session.execute(
            insert(cast(Table, LedgerTransaction.__table__)),
            [{**{k: v for k, v in t.items() if k != "meta"}, "metadata": t["meta"]} for t in self._transactions],
        )
        await session.execute(insert(cast(Table, LedgerEntry.__table__)), self._entries)
        table = cast(Table, LedgerAccount.__table__)
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(balance=table.c.balance + bindparam("b_delta"), version=table.c.version + bindparam("b_count")),
            [
                {"b_id": self.accounts[key].id, "b_delta": sum(moves), "b_count": len(moves)}
                for key, moves in sorted(self._moves.items(), key=lambda kv: self.accounts[kv[0]].id)
            ],
        )
        self._transactions, self._entries, self._moves = [], [], {}


async def reverse_transaction(
    *, session: AsyncSession, transaction_id: uuid.UUID, actor_id: uuid.UUID | None, reason: str
) -> Posted:
    """Post the mirror image of a transaction (the only correction the ledger allows); once per transaction."""
    original = await session.get(LedgerTransaction, transaction_id)
    if original is None:
        raise InvalidInput("no such ledger transaction", code="transaction_not_found")
    rows = (
        await session.execute(
            select(LedgerAccount, LedgerEntry.amount)
            .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
            .where(LedgerEntry.transaction_id == transaction_id)
        )
    ).all()
    legs = [Leg(AccountSpec(a.key, a.kind, a.unit, a.owner_id, a.allow_negative), -int(amount)) for a, amount in rows]
    already = await session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.reverses_id == transaction_id))
    if already is not None:
        raise Conflict("this transaction was already reversed", code="already_reversed")
    return await post_transaction(
        session=session,
        kind="reversal",
        legs=legs,
        actor_id=actor_id,
        reverses_id=transaction_id,
        meta={"reason": reason, "reverses_kind": original.kind},
    )


@dataclass
class LedgerReport:
    ok: bool
    accounts_checked: int
    transactions_checked: int
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    transactions_unbalanced: list[dict[str, Any]] = field(default_factory=list)
    negative_balances: list[dict[str, Any]] = field(default_factory=list)


async def verify_ledger(session: AsyncSession) -> LedgerReport:
    """Check the invariants: balanced transactions per unit, balances equal their entries, no forbidden negatives."""
    unbalanced = (
        await session.execute(
            select(LedgerEntry.transaction_id, LedgerEntry.unit, func.sum(LedgerEntry.amount))
            .group_by(LedgerEntry.transaction_id, LedgerEntry.unit)
            .having(func.sum(LedgerEntry.amount) != 0)
        )
    ).all()
    sums = (
        select(LedgerEntry.account_id, func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    accounts = (
        await session.execute(
            select(LedgerAccount, func.coalesce(sums.c.total, 0)).outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        )
    ).all()
    wrong_unit = (
        await session.execute(
            select(LedgerEntry.id, LedgerEntry.account_id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerEntry.unit != LedgerAccount.unit)
            .limit(100)
        )
    ).all()
    tx_count = int(await session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0)
    report = LedgerReport(ok=True, accounts_checked=len(accounts), transactions_checked=tx_count)
    for tx_id, unit, total in unbalanced:
        report.transactions_unbalanced.append({"transaction_id": str(tx_id), "unit": unit, "sum": int(total)})
    for account, total in accounts:
        if int(total) != account.balance:
            report.mismatches.append({"account": account.key, "balance": account.balance, "entries_sum": int(total)})
        if account.balance < 0 and not account.allow_negative:
            report.negative_balances.append({"account": account.key, "balance": account.balance})
    for entry_id, account_id in wrong_unit:
        report.mismatches.append({"entry_id": str(entry_id), "account_id": str(account_id), "problem": "unit"})
    report.ok = not (report.mismatches or report.transactions_unbalanced or report.negative_balances)
    return report
