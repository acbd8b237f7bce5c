"""Gift batching: concurrent gift requests of one process share one database transaction.

Gifts to one stream all lock the same credit accounts (the creator's earnings and platform
revenue) until commit, so one transaction per gift serializes them on those rows with every
round trip and event-loop turn in between. The batcher instead drains the queued requests into
one transaction: it reads what needs no lock (``service.gift_context``: stored idempotency keys,
streams, blocks, gifts), creates and locks every account the batch touches (and the streams'
throne rows) in the one global order (by id), then posts the whole batch in bulk
(``service.send_gifts``: every gift checked in Python against the locked balances, a refused gift
gets its own error and writes nothing, the rest written in a few multi-row statements) and
commits once. Two batches are in flight at a time on PostgreSQL: the next one makes its
unlocked reads while the current one holds the locks. If the bulk write hits a unique key —
another transaction (another process, or the other batch in flight) committed one of the
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
from prometheus_client import Histogram
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.core.db import in_list
from halobuzz.core.errors import Conflict, DomainError, Unauthorized
from halobuzz.economy import fraud, ledger, service, thrones
from halobuzz.economy.models import StreamThrone
from halobuzz.streams.models import Stream

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)

BATCH_SIZE = Histogram(
    "halobuzz_gift_batch_size", "Gifts posted per batch transaction", buckets=(1, 2, 5, 10, 20, 30, 50, 75, 100)
)

MAX_BATCH = 100
# Fewer waiting gifts than this go in one batch even when two could start (a batch's fixed cost,
# about twenty statements, outweighs what the overlap saves).
SPLIT_FROM = 20
# Batches in flight at once: while one holds the locks, the next makes its unlocked reads and
# then waits for the locks in PostgreSQL, so the locked part of one follows the other's commit.
IN_FLIGHT = 2


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

    def __init__(self, runtime: Runtime, *, max_batch: int = MAX_BATCH, in_flight: int = IN_FLIGHT) -> None:
        self.runtime = runtime
        self.max_batch = max_batch
        self.in_flight = in_flight
        self.queue: deque[GiftRequest] = deque()
        self._drainer: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._last_locked = asyncio.Event()
        self._last_locked.set()

    async def send(self, request: GiftRequest) -> service.GiftReceipt:
        """Queue a gift and wait for its receipt (or its error)."""
        request.future = asyncio.get_running_loop().create_future()
        self.queue.append(request)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        # Shielded: a caller that goes away does not cancel the batch the gift is part of.
        return await asyncio.shield(request.future)

    async def close(self) -> None:
        """Finish the queued gifts (called at shutdown)."""
        if self._drainer is not None:
            await asyncio.shield(self._drainer)
        if self._running:
            await asyncio.shield(asyncio.gather(*self._running))

    async def _drain(self) -> None:
        """Start batches while gifts are queued: the next one once the last one holds its locks
        (so the next one's unlocked reads overlap with its locked part, and a batch takes every
        gift that arrived meanwhile), at most ``in_flight`` at a time."""
        while self.queue:
            await self._last_locked.wait()
            while len(self._running) >= self.in_flight:
                await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
            if not self.queue:
                break
            # With no batch running, many waiting gifts are shared among the free slots: under a
            # steady load the senders then split into groups that take turns, one group's
            # requests and answers travelling while the other's batch holds the locks.
            free = self.in_flight - len(self._running) if len(self.queue) >= SPLIT_FROM else 1
            take = min(self.max_batch, -(-len(self.queue) // free))
            batch = [self.queue.popleft() for _ in range(take)]
            BATCH_SIZE.observe(len(batch))
            locked = self._last_locked = asyncio.Event()
            task = asyncio.create_task(self._run_batch(batch, locked))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_batch(self, batch: list[GiftRequest], locked: asyncio.Event) -> None:
        try:
            await self._run(batch, locked)
        except Exception as exc:  # the commit (or the up-front locking) failed: nothing was written
            log.warning("gift_batch_failed", size=len(batch), error=repr(exc))
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(exc)
        finally:
            locked.set()

    async def _run(self, batch: list[GiftRequest], locked: asyncio.Event) -> None:
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
        stream_ids = {r.stream_id for r in batch}
        outcomes: list[service.GiftReceipt | DomainError]
        try:
            async with runtime.db.session() as session:
                # The reads that need no lock first, while another batch may still hold the locks.
                context = await service.gift_context(session=session, orders=orders)
                names.update(await _usernames(session, batch))
                accounts = await _lock_batch(session, batch, context.owners)
                locked.set()
                outcomes, hooks = await service.send_gifts(
                    session=session,
                    orders=orders,
                    accounts=accounts,
                    settings=runtime.settings.economy,
                    velocity=service.Velocity(runtime.settings.fraud, runtime.db),
                    context=context,
                )
                for hook in hooks:
                    hook()
        except IntegrityError:
            # Another transaction committed one of these idempotency keys meanwhile (this one
            # rolled back, nothing of it written): post the batch again, one by one, so only that
            # gift fails.
            async with runtime.db.session() as session:
                owners = dict(
                    (await session.execute(select(Stream.id, Stream.owner_id).where(Stream.id.in_(stream_ids)))).all()
                )
                await _lock_batch(session, batch, owners)
                outcomes = await self._run_each(session, batch)
        for r, outcome in zip(batch, outcomes, strict=True):
            if r.future.done():
                continue
            if isinstance(outcome, DomainError):
                r.future.set_exception(outcome)
            else:
                r.future.set_result(outcome)

    async def _run_each(
        self, session: AsyncSession, batch: list[GiftRequest]
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
                        on_committed=_announcer(runtime, {actor.id: actor.username}, r.actor_id),
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


_USERNAMES = select(User.id, User.username).where(in_list(User.id, "ids"))
# Loaded as entities: the throne update of send_gifts finds them locked in the session.
_LOCK_THRONES = (
    select(StreamThrone)
    .where(in_list(StreamThrone.stream_id, "ids"))
    .order_by(StreamThrone.stream_id)
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def _usernames(session: AsyncSession, batch: list[GiftRequest]) -> dict[uuid.UUID, str]:
    ids = sorted({r.actor_id for r in batch})
    return dict((await session.execute(_USERNAMES, {"ids": ids})).all())


async def _lock_batch(
    session: AsyncSession, batch: list[GiftRequest], owners: dict[uuid.UUID, uuid.UUID]
) -> dict[str, ledger.LockedAccount]:
    """Create and lock (by id) every account the batch may touch, then the streams' throne rows
    (by stream id): the order every gift takes its locks in, so batches never deadlock. ``owners``
    maps the batch's (existing) streams to their owners. The locked accounts with their balances."""
    specs = [ledger.platform("platform_revenue")]
    specs += [ledger.user_coins(r.actor_id) for r in batch]
    specs += [ledger.creator_earnings(owner) for owner in owners.values()]
    accounts = await ledger.lock_accounts(session=session, specs=specs)
    if owners:
        ids = {"ids": sorted(owners)}
        locked = {t.stream_id for t in (await session.scalars(_LOCK_THRONES, ids)).all()}
        if len(locked) < len(owners):
            for stream_id in sorted(set(owners) - locked):
                await thrones.ensure_row(session, stream_id)
            await session.execute(_LOCK_THRONES, ids)
    return accounts


def batcher_of(runtime: Runtime) -> GiftBatcher:
    """The process's gift batcher (created on first use)."""
    found = runtime.extras.get("gift_batcher")
    if not isinstance(found, GiftBatcher):
        # SQLite has one writer: a second batch would only wait for its connection.
        in_flight = 1 if runtime.db.is_sqlite else IN_FLIGHT
        found = runtime.extras["gift_batcher"] = GiftBatcher(runtime, in_flight=in_flight)
    return found


async def close(runtime: Runtime) -> None:
    """Let the process's batcher finish its queued gifts (shutdown)."""
    found = runtime.extras.get("gift_batcher")
    if isinstance(found, GiftBatcher):
        await found.close()
