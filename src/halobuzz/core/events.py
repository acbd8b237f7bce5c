"""Domain events through a transactional outbox (docs/events.md).

``emit`` adds an ``outbox_event`` row in the caller's transaction: a rolled-back transaction
publishes nothing, a committed one is published at least once. The relay reads committed rows
(woken by PostgreSQL ``LISTEN/NOTIFY`` — a trigger notifies on insert, delivered at commit — or by
an in-process wake-up after commit, and polling as the fallback) and hands each event to every
consumer registered for its type.

Idempotency: a consumer's handler opens its own transaction(s) through ``runtime.db``; the framework
records ``(consumer, event_id)`` in ``processed_event`` right after the handler returns and skips any
later delivery of an event already recorded. (Marking inside the handler's own transaction is not
possible on SQLite, where a second write transaction would wait for the first.) A crash between
the handler's commit and the mark redelivers once, so handlers stay idempotent for their own
effects — the usual at-least-once contract. A consumer that keeps failing is retried with
exponential backoff, then its event is recorded in ``dead_letter_job`` for admins to retry.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import DDL, JSON, Index, String, Table, event, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base, after_commit
from halobuzz.core.ids import uuid7

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "halobuzz_outbox"
EVENT_TYPES = (
    "stream.live",
    "stream.offline",
    "user.new_follower",
    "gift.sent",
    "payment.completed",
    "subscription.new",
    "raid.incoming",
    "moderation.action",
)


class OutboxEvent(Base):
    """An event written with the state change that caused it; ``dispatched_at`` once delivered."""

    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_event_pending", "dispatched_at", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(default=1)
    occurred_at: Mapped[datetime]
    actor_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))


class ProcessedEvent(Base):
    """One row per (consumer, event) already handled: later deliveries of the event skip it."""

    __tablename__ = "processed_event"

    consumer: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class DeadLetterJob(Base):
    """A consumer delivery or job that exhausted its retries; admins list and retry these."""

    __tablename__ = "dead_letter_job"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    kind: Mapped[str] = mapped_column(String(32))  # "consumer" | "job" | "webhook"
    name: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int]
    error: Mapped[str] = mapped_column(String(2000))
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    retried_at: Mapped[datetime | None]


# PostgreSQL: announce inserted rows on commit, so relays in any process wake without polling.
NOTIFY_DDL = (
    "CREATE OR REPLACE FUNCTION halobuzz_outbox_notify() RETURNS trigger AS $$ "
    f"BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', ''); RETURN NULL; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER outbox_event_notify AFTER INSERT ON outbox_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION halobuzz_outbox_notify()",
)
for _statement in NOTIFY_DDL:
    _ddl = DDL(_statement)  # type: ignore[no-untyped-call]
    event.listen(OutboxEvent.__table__, "after_create", _ddl.execute_if(dialect="postgresql"))


@dataclass(frozen=True)
class Event:
    id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    actor_id: uuid.UUID | None
    data: dict[str, Any]

    def to_envelope(self) -> dict[str, Any]:
        """The JSON-safe envelope consumers and webhooks see."""
        return {
            "id": str(self.id),
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "actor_id": str(self.actor_id) if self.actor_id else None,
            "data": _json_safe(self.data),
        }

    @classmethod
    def from_envelope(cls, env: dict[str, Any]) -> Event:
        """The event of a stored or transported envelope (the inverse of ``to_envelope``)."""
        return cls(
            uuid.UUID(env["id"]),
            env["type"],
            int(env["version"]),
            datetime.fromisoformat(env["occurred_at"].replace("Z", "+00:00")),
            uuid.UUID(env["actor_id"]) if env.get("actor_id") else None,
            dict(env["data"]),
        )

    @classmethod
    def from_row(cls, row: OutboxEvent) -> Event:
        return cls(row.id, row.type, row.version, row.occurred_at, row.actor_id, dict(row.data))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


# Relays of this process, woken after a commit that emitted (no wait for the next poll).
_wakers: set[asyncio.Event] = set()


def _wake_local() -> None:
    for waker in list(_wakers):
        waker.set()


def emit(
    session: AsyncSession,
    type: str,
    data: dict[str, Any],
    *,
    actor_id: uuid.UUID | None = None,
    version: int = 1,
) -> Event:
    """Add an event to the outbox in the caller's transaction (published only if it commits)."""
    now = utcnow()
    evt = Event(uuid7(), type, version, now, actor_id, _json_safe(data))
    session.add(
        OutboxEvent(
            id=evt.id,
            type=type,
            version=version,
            occurred_at=now,
            actor_id=actor_id,
            data=evt.data,
            attempts=0,
            next_attempt_at=now,
        )
    )
    if not session.info.get("outbox_wake"):
        session.info["outbox_wake"] = True

        def _wake() -> None:
            session.info.pop("outbox_wake", None)
            _wake_local()

        after_commit(session, _wake)
    return evt


async def emit_many(
    session: AsyncSession, items: list[tuple[str, dict[str, Any], uuid.UUID | None]], *, version: int = 1
) -> list[Event]:
    """``emit`` for many events, ``(type, data, actor_id)`` each, in one multi-row insert (in order)."""
    if not items:
        return []
    now = utcnow()
    evts = [Event(uuid7(), type, version, now, actor_id, _json_safe(data)) for type, data, actor_id in items]
    await session.execute(
        sa_insert(cast(Table, OutboxEvent.__table__)),
        [
            {
                "id": e.id,
                "type": e.type,
                "version": version,
                "occurred_at": now,
                "actor_id": e.actor_id,
                "data": e.data,
                "attempts": 0,
                "next_attempt_at": now,
            }
            for e in evts
        ],
    )
    if not session.info.get("outbox_wake"):
        session.info["outbox_wake"] = True

        def _wake() -> None:
            session.info.pop("outbox_wake", None)
            _wake_local()

        after_commit(session, _wake)
    return evts


Handler = Callable[["Runtime", Event], Awaitable[None]]


@dataclass
class Consumer:
    event_type: str
    name: str
    target: Handler | str  # a function or "package.module:function", resolved on first use

    def resolve(self) -> Handler | None:
        if not isinstance(self.target, str):
            return self.target
        fn: Handler | None = resolve_path(self.target)
        if fn is not None:
            self.target = fn
        return fn


_consumers: dict[str, Consumer] = {}


def consumer(event_type: str, *, name: str) -> Callable[[Handler], Handler]:
    """Register ``async def handler(runtime, event)`` for ``event_type`` under a unique ``name``."""

    def decorate(fn: Handler) -> Handler:
        register_consumer(event_type, name=name, target=fn)
        return fn

    return decorate


def register_consumer(event_type: str, *, name: str, target: Handler | str) -> None:
    """Register a handler by function or by dotted path ``"package.module:function"``."""
    _consumers[name] = Consumer(event_type, name, target)


def unregister_consumer(name: str) -> None:
    _consumers.pop(name, None)


def get_consumer(name: str) -> Consumer | None:
    return _consumers.get(name)


def consumers_for(event_type: str) -> list[Consumer]:
    return [c for c in _consumers.values() if c.event_type == event_type]


def resolve_path(path: str) -> Any:
    """Import ``"package.module:attr"``; None (logged) when the module or attribute is missing."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            log.warning("dotted_path_missing", path=path)
            return None
        raise
    fn = getattr(module, attr, None)
    if fn is None:
        log.warning("dotted_path_missing", path=path)
    return fn


async def deliver(runtime: Runtime, evt: Event, item: Consumer) -> bool:
    """Run one consumer for one event unless it already has; True if it ran now."""
    async with runtime.db.session(write=False) as s:
        done = await s.get(ProcessedEvent, (item.name, evt.id))
    if done is not None:
        return False
    handler = item.resolve()
    if handler is None:
        return False
    await handler(runtime, evt)
    try:
        async with runtime.db.session() as s:
            s.add(ProcessedEvent(consumer=item.name, event_id=evt.id, processed_at=utcnow()))
    except IntegrityError:  # a concurrent delivery marked it first
        pass
    return True


@dataclass
class RelaySettings:
    poll_seconds: float = 1.0
    batch_size: int = 100
    max_attempts: int = 8
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 600.0
    lease_seconds: float = 300.0

    @classmethod
    def from_settings(cls, runtime: Runtime) -> RelaySettings:
        jobs = runtime.settings.jobs
        return cls(
            poll_seconds=jobs.relay_poll_seconds,
            max_attempts=jobs.max_attempts,
            backoff_base_seconds=jobs.backoff_base_seconds,
        )


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Exponential backoff: base, 2·base, 4·base … capped."""
    return float(min(cap, base * (2 ** max(0, attempt - 1))))


@dataclass
class Relay:
    """Publishes committed outbox rows to the registered consumers."""

    runtime: Runtime
    settings: RelaySettings = field(default_factory=RelaySettings)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    listening: bool = False  # PostgreSQL LISTEN is active

    async def run_once(self) -> int:
        """Claim and deliver the due, undispatched events once; the number dispatched.

        Claiming moves ``next_attempt_at`` a lease ahead (``SKIP LOCKED`` on PostgreSQL), so
        several relays (workers) share the outbox without delivering a row twice at once; a
        relay that dies mid-delivery leaves rows that come due again when the lease ends.
        """
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        async with self.runtime.db.session() as s:
            due = (
                select(OutboxEvent.id)
                .where(OutboxEvent.dispatched_at.is_(None), OutboxEvent.next_attempt_at <= now)
                .order_by(OutboxEvent.occurred_at, OutboxEvent.id)
                .limit(self.settings.batch_size)
            )
            if not self.runtime.db.is_sqlite:
                due = due.with_for_update(skip_locked=True)
            ids = list((await s.execute(due)).scalars())
            rows: list[OutboxEvent] = []
            if ids:
                await s.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id.in_(ids))
                    .values(next_attempt_at=lease)
                    .execution_options(synchronize_session=False)
                )
                rows = list((await s.execute(select(OutboxEvent).where(OutboxEvent.id.in_(ids)))).scalars())
        rows.sort(key=lambda r: (r.occurred_at, r.id))
        dispatched = 0
        for row in rows:
            if await self._dispatch(row):
                dispatched += 1
        return dispatched

    async def _dispatch(self, row: OutboxEvent) -> bool:
        evt = Event.from_row(row)
        errors: list[tuple[Consumer, str]] = []
        for item in consumers_for(evt.type):
            try:
                await deliver(self.runtime, evt, item)
            except Exception as exc:
                log.warning("consumer_failed", consumer=item.name, event_id=str(evt.id), error=repr(exc))
                errors.append((item, repr(exc)[:1000]))
        attempts = row.attempts + 1
        now = utcnow()
        async with self.runtime.db.session() as s:
            values: dict[str, Any]
            if not errors:
                values = {"dispatched_at": now, "attempts": attempts, "last_error": None}
            elif attempts >= self.settings.max_attempts:
                for item, error in errors:
                    s.add(
                        DeadLetterJob(
                            kind="consumer",
                            name=item.name,
                            event_id=evt.id,
                            payload=evt.to_envelope(),
                            attempts=attempts,
                            error=error,
                            failed_at=now,
                        )
                    )
                values = {"dispatched_at": now, "attempts": attempts, "last_error": errors[0][1]}
            else:
                delay = backoff(
                    attempts, base=self.settings.backoff_base_seconds, cap=self.settings.backoff_max_seconds
                )
                values = {
                    "attempts": attempts,
                    "last_error": errors[0][1],
                    "next_attempt_at": now + timedelta(seconds=delay),
                }
            await s.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == evt.id, OutboxEvent.dispatched_at.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        return not errors

    async def run(self) -> None:
        """Loop until cancelled: deliver, then wait for a wake-up (NOTIFY / local commit) or the poll."""
        _wakers.add(self._wake)
        listener = asyncio.create_task(self._listen()) if not self.runtime.db.is_sqlite else None
        try:
            while True:
                self._wake.clear()
                try:
                    while await self.run_once() >= self.settings.batch_size:
                        pass
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("relay_failed")
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_seconds)
        finally:
            _wakers.discard(self._wake)
            if listener is not None:
                listener.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await listener

    async def _listen(self) -> None:
        """PostgreSQL LISTEN on the outbox channel; on any failure fall back to polling and retry."""
        import asyncpg
        from sqlalchemy.engine import make_url

        dsn = make_url(self.runtime.db.url).set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
                self._wake.set()  # catch up on anything committed before the listener started
                self.listening = True
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_listen_failed", error=str(exc))
            finally:
                self.listening = False
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(5.0)


async def requeue_dead_letter(session: AsyncSession, *, dead: DeadLetterJob) -> None:
    """Queue a dead-lettered consumer delivery again (in the caller's transaction).

    The event's outbox row becomes due now (re-created from the stored envelope if cleanup has
    removed it); consumers that already handled it skip it through their processed marks.
    """
    env = dead.payload
    row = await session.get(OutboxEvent, dead.event_id, with_for_update=True) if dead.event_id else None
    now = utcnow()
    if row is None:
        session.add(
            OutboxEvent(
                id=uuid.UUID(env["id"]),
                type=env["type"],
                version=int(env["version"]),
                occurred_at=datetime.fromisoformat(env["occurred_at"].replace("Z", "+00:00")),
                actor_id=uuid.UUID(env["actor_id"]) if env.get("actor_id") else None,
                data=dict(env["data"]),
                attempts=0,
                next_attempt_at=now,
            )
        )
    else:
        row.dispatched_at, row.attempts, row.next_attempt_at, row.last_error = None, 0, now, None
    dead.retried_at = now
    await session.flush()
    after_commit(session, _wake_local)
