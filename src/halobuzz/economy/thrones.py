"""Stream thrones: a stream's top gifter over the last ``throne_window_hours`` holds its throne.

Every new gift recomputes the holder while holding the stream's ``stream_throne`` row lock (taken
after the ledger's account locks, in that order everywhere), so of two racing gifts the second
waits for the first's commit and then sees both gifts: the stored holder is always the top of the
committed gifts. A change of holder is announced to the ``stream:{id}`` room as
``throne_changed`` after commit (docs/realtime.md).

Window sums come from ``gift_tally`` (coins per stream, sender and UTC hour, added to under the
throne lock) for the window's whole hours, plus the gifts themselves for its first, partial hour,
so a recomputation reads about one row per sender and hour rather than every gift. After new
gifts, only their senders and the holder are summed: a sender who sent nothing since the last
recomputation cannot have overtaken the holder — unless gifts of the holder left the window
meanwhile, which shows as the holder's sum falling below the stored ``coins``, and then (as in the
02:00 expiry job) every sender of the window is summed.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import Table, bindparam, func, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.core.clock import utcnow
from halobuzz.core.db import in_list
from halobuzz.core.errors import NotFound
from halobuzz.economy.models import GiftSent, GiftTally, StreamThrone
from halobuzz.streams.models import Stream

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Holder:
    user_id: uuid.UUID
    username: str
    display_name: str
    coins: int


@dataclass(frozen=True, slots=True)
class ThroneChange:
    """A new holder (or none) of a stream's throne; the ``throne_changed`` payload."""

    stream_id: uuid.UUID
    holder: Holder | None
    previous_holder_id: uuid.UUID | None
    since: datetime | None

    def payload(self) -> dict[str, Any]:
        h = self.holder
        return {
            "stream_id": self.stream_id,
            "holder": None if h is None else {"id": h.user_id, "username": h.username, "display_name": h.display_name},
            "coins": 0 if h is None else h.coins,
            "previous_holder_id": self.previous_holder_id,
            "since": self.since,
        }


@dataclass(frozen=True, slots=True)
class NewGift:
    """A gift just written, for the stream's tally (``update_throne``)."""

    sender_id: uuid.UUID
    coins: int
    at: datetime


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _window_query(*, some_senders: bool) -> Any:
    """Senders' coins to a stream since ``:since`` (all senders, or those of ``:senders``), best
    first (ties: who reached it first, then id): the tally's whole hours from ``:edge`` on plus
    the gifts of the window's partial first hour. Built once per shape."""
    hours = select(
        GiftTally.sender_id.label("sender_id"), GiftTally.coins.label("coins"), GiftTally.last_at.label("last")
    ).where(GiftTally.stream_id == bindparam("stream_id"), GiftTally.hour >= bindparam("edge"))
    partial = select(GiftSent.sender_id, GiftSent.coins, GiftSent.created_at).where(
        GiftSent.stream_id == bindparam("stream_id"),
        GiftSent.created_at > bindparam("since"),
        GiftSent.created_at < bindparam("edge"),
    )
    if some_senders:
        hours = hours.where(in_list(GiftTally.sender_id, "senders"))
        partial = partial.where(in_list(GiftSent.sender_id, "senders"))
    window = union_all(hours, partial).subquery()
    coins = func.sum(window.c.coins).label("coins")
    query = (
        select(User.id, User.username, User.display_name, coins)
        .join(User, User.id == window.c.sender_id)
        .group_by(User.id, User.username, User.display_name)
        .order_by(coins.desc(), func.max(window.c.last).asc(), User.id)
    )
    return query if some_senders else query.limit(1)


_SENDERS_SUMS = _window_query(some_senders=True)
_TOP_SUM = _window_query(some_senders=False)


async def _window_sums(
    session: AsyncSession, stream_id: uuid.UUID, since: datetime, senders: set[uuid.UUID] | None
) -> list[Holder]:
    """``_window_query``'s rows: every one of ``senders``, or the top sender when ``None``."""
    params: dict[str, Any] = {"stream_id": stream_id, "since": since, "edge": _hour(since) + timedelta(hours=1)}
    if senders is not None:
        params["senders"] = sorted(senders)
    query = _TOP_SUM if senders is None else _SENDERS_SUMS
    return [Holder(row[0], row[1], row[2], int(row[3])) for row in (await session.execute(query, params)).all()]


async def top_gifter(*, session: AsyncSession, stream_id: uuid.UUID, since: datetime) -> Holder | None:
    """The sender of the most coins to the stream since ``since`` (ties: who reached it first)."""
    best = await _window_sums(session, stream_id, since, None)
    return best[0] if best else None


@functools.cache
def _tally_upsert(dialect: str) -> Any:
    postgres = dialect == "postgresql"
    table = cast(Table, GiftTally.__table__)
    ins = (pg_insert if postgres else sqlite_insert)(table)
    latest = func.greatest if postgres else func.max
    return ins.on_conflict_do_update(
        index_elements=["stream_id", "sender_id", "hour"],
        set_={"coins": table.c.coins + ins.excluded.coins, "last_at": latest(table.c.last_at, ins.excluded.last_at)},
    )


async def _add_to_tally(session: AsyncSession, stream_id: uuid.UUID, gifts: Sequence[NewGift]) -> None:
    """Add new gifts to the stream's tally (one upsert; the caller holds the throne lock)."""
    sums: dict[tuple[uuid.UUID, datetime], list[Any]] = {}
    for g in gifts:
        entry = sums.setdefault((g.sender_id, _hour(g.at)), [0, g.at])
        entry[0] += g.coins
        entry[1] = max(entry[1], g.at)
    # One Core statement executed for many rows: compiled once and cached, unlike a multi-row
    # VALUES whose shape (and SQL) changes with the number of rows.
    await session.execute(
        _tally_upsert(session.get_bind().dialect.name),
        [
            {"stream_id": stream_id, "sender_id": sender, "hour": hour, "coins": total, "last_at": last}
            for (sender, hour), (total, last) in sorted(sums.items())
        ],
    )


async def ensure_row(session: AsyncSession, stream_id: uuid.UUID) -> None:
    """Create the stream's throne row when missing (a concurrent twin is ignored)."""
    ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        ins(StreamThrone)
        .values(stream_id=stream_id, holder_id=None, coins=0, since=None, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["stream_id"])
    )


async def _lock(session: AsyncSession, stream_id: uuid.UUID) -> StreamThrone:
    query = (
        select(StreamThrone)
        .where(StreamThrone.stream_id == stream_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    throne = await session.scalar(query)
    if throne is None:
        await ensure_row(session, stream_id)
        throne = await session.scalar(query)
    assert throne is not None
    return throne


async def update_throne(
    *,
    session: AsyncSession,
    stream_id: uuid.UUID,
    window: timedelta,
    now: datetime | None = None,
    locked: bool = False,
    gifts: Sequence[NewGift] = (),
) -> ThroneChange | None:
    """Recompute the stream's throne under its row lock (taken here, or ``locked`` by the caller
    in this transaction), after adding the ``gifts`` just written to its tally; the change, if the
    holder changed."""
    now = now or utcnow()
    throne = await session.get(StreamThrone, stream_id) if locked else None
    if throne is None:
        throne = await _lock(session, stream_id)
    since = now - window
    top: Holder | None = None
    summed = False
    if gifts:
        await _add_to_tally(session, stream_id, gifts)
        senders = {g.sender_id for g in gifts}
        holder = throne.holder_id
        if holder is not None:
            sums = await _window_sums(session, stream_id, since, senders | {holder})
            held = next((h.coins for h in sums if h.user_id == holder), 0)
            # Nobody else can have overtaken the holder unless the holder's own sum fell.
            if held > throne.coins or (held == throne.coins and holder not in senders):
                top, summed = (sums[0] if sums else None), True
    if not summed:
        top = await top_gifter(session=session, stream_id=stream_id, since=since)
    previous = throne.holder_id
    throne.coins = top.coins if top else 0
    throne.updated_at = now
    changed = (top.user_id if top else None) != previous
    if changed:
        throne.holder_id = top.user_id if top else None
        throne.since = now if top else None
    await session.flush()
    if not changed:
        return None
    return ThroneChange(stream_id, top, previous, throne.since)


@dataclass(frozen=True, slots=True)
class ThroneView:
    stream_id: uuid.UUID
    holder: Holder | None
    since: datetime | None
    window_hours: float


async def get_throne(*, session: AsyncSession, stream_id: uuid.UUID, window: timedelta) -> ThroneView:
    """Who holds the stream's throne now (computed from the window's gifts)."""
    stream = await session.get(Stream, stream_id)
    if stream is None or stream.deleted_at is not None:
        raise NotFound("no such stream", code="stream_not_found")
    top = await top_gifter(session=session, stream_id=stream_id, since=utcnow() - window)
    stored = await session.get(StreamThrone, stream_id)
    since = stored.since if stored is not None and top is not None and stored.holder_id == top.user_id else None
    return ThroneView(stream_id, top, since, window.total_seconds() / 3600)


async def expire(*, session: AsyncSession, window: timedelta, now: datetime) -> list[ThroneChange]:
    """Recompute every held throne whose oldest counted gifts may have left the window."""
    ids = (await session.scalars(select(StreamThrone.stream_id).where(StreamThrone.holder_id.is_not(None)))).all()
    changes: list[ThroneChange] = []
    for stream_id in sorted(ids):
        change = await update_throne(session=session, stream_id=stream_id, window=window, now=now)
        if change is not None:
            changes.append(change)
    return changes


async def expire_thrones(runtime: Runtime, *, scheduled_for: datetime) -> dict[str, Any]:
    """The 02:00 job: thrones whose holder's gifts left the window pass on (or lapse), announced
    to each stream's room. Idempotent: a re-run finds nothing more to change."""
    from halobuzz.realtime import hooks

    window = timedelta(hours=runtime.settings.economy.throne_window_hours)
    async with runtime.db.session() as session:
        changes = await expire(session=session, window=window, now=utcnow())
    for change in changes:
        hooks.throne_changed(runtime, change)
    result = {
        "changed": len(changes),
        "vacated": sum(1 for c in changes if c.holder is None),
    }
    log.info("thrones_expired", **result)
    return result
