"""Gift batching: concurrent gift requests of one process share one database transaction.

Gifts to one stream all lock the same credit accounts (the creator's earnings and platform
revenue) until commit, so one transaction per gift serializes them on those rows with every
round trip and event-loop turn in between. The batcher instead drains the queued requests into
one transaction: it creates and locks every account the batch touches (and the streams' throne
rows) up front in the one global order (by id), then posts the whole batch in bulk
(``service.send_gifts``: every gift checked in Python against the locked balances, a refused gift
gets its own error and writes nothing, the rest written in a few multi-row statements) and
commits once. If the bulk write hits a unique key — another process committed one of the
idempotency keys meanwhile — its transaction rolls back and the batch is posted again gift by
gift in a new one, each gift in its own SAVEPOINT, so only that gift fails. Each caller gets its own receipt or
error; after-commit hooks (room broadcasts) run after that commit, as for a single gift. If the
commit itself fails every request of the batch fails with it, and nothing of it was written.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.core.errors import Conflict, DomainError, Unauthorized
from halobuzz.economy import fraud, ledger, service, thrones
from halobuzz.economy.models import StreamThrone
from halobuzz.streams.models import Stream

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)

MAX_BATCH = 100


@dataclass(eq=False)
class GiftRequest:
    actor_id: uuid.UUID
    stream_id: uuid.UUID
    gift_id: uuid.UUID
    quantity: int
    idempotency_key: str
    future: asyncio.Future[service.GiftReceipt] = field(init=False)


class GiftBatcher:
    """One per process (``runtime.extras["gift_batcher"]``); ``send`` is ``service.send_gift``
    with the same answers, batched with whatever other gifts are waiting."""

    def __init__(self, runtime: Runtime, *, max_batch: int = MAX_BATCH) -> None:
        self.runtime = runtime
        self.max_batch = max_batch
        self.queue: deque[GiftRequest] = deque()
        self._worker: asyncio.Task[None] | None = None

    async def send(self, request: GiftRequest) -> service.GiftReceipt:
        """Queue a gift and wait for its receipt (or its error)."""
        request.future = asyncio.get_running_loop().create_future()
        self.queue.append(request)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        # Shielded: a caller that goes away does not cancel the batch the gift is part of.
        return await asyncio.shield(request.future)

    async def close(self) -> None:
        """Finish the queued gifts (called at shutdown)."""
        if self._worker is not None:
            await asyncio.shield(self._worker)

    async def _drain(self) -> None:
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(self.max_batch, len(self.queue)))]
            try:
                await self._run(batch)
            except Exception as exc:  # the commit (or the up-front locking) failed: nothing was written
                log.warning("gift_batch_failed", size=len(batch), error=repr(exc))
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(exc)

    async def _run(self, batch: list[GiftRequest]) -> None:
        runtime = self.runtime
        names: dict[uuid.UUID, str] = {}  # the senders' usernames, read with the locks
        orders = [
            service.GiftOrder(
                actor_id=r.actor_id,
                stream_id=r.stream_id,
                gift_id=r.gift_id,
                quantity=r.quantity,
                idempotency_key=r.idempotency_key,
                on_committed=_announcer(runtime, names, r.actor_id),
            )
            for r in batch
        ]
        outcomes: list[service.GiftReceipt | DomainError]
        try:
            async with runtime.db.session() as session:
                accounts = await _lock_batch(session, batch, names)
                outcomes, hooks = await service.send_gifts(
                    session=session,
                    orders=orders,
                    accounts=accounts,
                    settings=runtime.settings.economy,
                    velocity=service.Velocity(runtime.settings.fraud, runtime.db),
                )
                for hook in hooks:
                    hook()
        except IntegrityError:
            # Another process committed one of these idempotency keys meanwhile (the transaction
            # rolled back, nothing of it written): post the batch again, one by one, so only that
            # gift fails.
            async with runtime.db.session() as session:
                await _lock_batch(session, batch, names)
                outcomes = await self._run_each(session, batch, names)
        for r, outcome in zip(batch, outcomes, strict=True):
            if r.future.done():
                continue
            if isinstance(outcome, DomainError):
                r.future.set_exception(outcome)
            else:
                r.future.set_result(outcome)

    async def _run_each(
        self, session: AsyncSession, batch: list[GiftRequest], names: dict[uuid.UUID, str]
    ) -> list[service.GiftReceipt | DomainError]:
        """Each gift of the batch in its own SAVEPOINT through ``service.send_gift``."""
        runtime = self.runtime
        outcomes: list[service.GiftReceipt | DomainError] = []
        for r in batch:
            actor = await session.get(User, r.actor_id)
            if actor is None:  # the account was deleted since its token was checked
                outcomes.append(Unauthorized("this sign-in has ended; sign in again", code="session_revoked"))
                continue
            try:
                async with session.begin_nested():
                    receipt = await service.send_gift(
                        session=session,
                        actor=actor,
                        stream_id=r.stream_id,
                        gift_id=r.gift_id,
                        quantity=r.quantity,
                        idempotency_key=r.idempotency_key,
                        settings=runtime.settings.economy,
                        on_committed=_announcer(runtime, names, r.actor_id),
                        guard=_guard(session, runtime, r.actor_id),
                    )
                outcomes.append(receipt)
            except DomainError as exc:
                outcomes.append(exc)
            except IntegrityError:
                outcomes.append(
                    Conflict(
                        "a concurrent request with this Idempotency-Key was posted; retry to get its answer",
                        code="idempotency_conflict",
                    )
                )
        return outcomes


def _announcer(runtime: Runtime, names: dict[uuid.UUID, str], sender_id: uuid.UUID) -> service.OnCommitted:
    from halobuzz.realtime import hooks as realtime_hooks

    return lambda receipt: realtime_hooks.gift_received(runtime, receipt, sender_username=names.get(sender_id, ""))


def _guard(session: AsyncSession, runtime: Runtime, sender_id: uuid.UUID) -> service.Guard:
    return lambda: fraud.check_gift_velocity(
        session=session, db=runtime.db, settings=runtime.settings.fraud, sender_id=sender_id
    )


async def _lock_batch(
    session: AsyncSession, batch: list[GiftRequest], names: dict[uuid.UUID, str]
) -> dict[str, ledger.LockedAccount]:
    """Create and lock (by id) every account the batch may touch, then the streams' throne rows
    (by stream id): the order every gift takes its locks in, so batches never deadlock. The
    locked accounts with their balances; the senders' usernames go into ``names``."""
    stream_ids = sorted({r.stream_id for r in batch})
    owners = dict((await session.execute(select(Stream.id, Stream.owner_id).where(Stream.id.in_(stream_ids)))).all())
    names.update(
        (await session.execute(select(User.id, User.username).where(User.id.in_({r.actor_id for r in batch})))).all()
    )
    specs = [ledger.platform("platform_revenue")]
    specs += [ledger.user_coins(r.actor_id) for r in batch]
    specs += [ledger.creator_earnings(owner) for owner in owners.values()]
    accounts = await ledger.lock_accounts(session=session, specs=specs)
    if owners:
        thrones_query = (
            select(StreamThrone.stream_id)
            .where(StreamThrone.stream_id.in_(sorted(owners)))
            .order_by(StreamThrone.stream_id)
            .with_for_update()
        )
        locked = set((await session.scalars(thrones_query)).all())
        if len(locked) < len(owners):
            for stream_id in sorted(set(owners) - locked):
                await thrones.ensure_row(session, stream_id)
            await session.execute(thrones_query)
    return accounts


def batcher_of(runtime: Runtime) -> GiftBatcher:
    """The process's gift batcher (created on first use)."""
    found = runtime.extras.get("gift_batcher")
    if not isinstance(found, GiftBatcher):
        found = runtime.extras["gift_batcher"] = GiftBatcher(runtime)
    return found


async def close(runtime: Runtime) -> None:
    """Let the process's batcher finish its queued gifts (shutdown)."""
    found = runtime.extras.get("gift_batcher")
    if isinstance(found, GiftBatcher):
        await found.close()
