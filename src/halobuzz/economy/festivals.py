"""Festivals: admin-defined periods per region with a daily bonus multiplier and their own gifts.

A festival counts while it is enabled and ``starts_at <= now < ends_at``; ``is_active`` mirrors
that for listings and is refreshed by the 01:00 job and on every admin change. Festival gifts
(``gift.festival_id``) are offered only while their festival counts (``economy.service``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import Conflict, InvalidInput, NotFound
from halobuzz.economy.models import Festival

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)


def running(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """The SQL condition of a festival that counts at ``now``."""
    return and_(Festival.enabled.is_(True), Festival.starts_at <= now, Festival.ends_at > now)


def _counts(festival: Festival, now: datetime) -> bool:
    return festival.enabled and festival.starts_at <= now < festival.ends_at


def _check(fields: dict[str, Any]) -> None:
    if fields["ends_at"] <= fields["starts_at"]:
        raise InvalidInput("ends_at must be after starts_at", code="invalid_window")


async def list_festivals(*, session: AsyncSession, active_only: bool, region: str | None = None) -> list[Festival]:
    """Festivals by start (only those running now with ``active_only``; ``region`` keeps the
    festivals of that country code and the ones held everywhere)."""
    query = select(Festival).order_by(Festival.starts_at, Festival.id)
    if active_only:
        query = query.where(running(utcnow()))
    items = list((await session.scalars(query)).all())
    if region:
        items = [f for f in items if not f.regions or region.upper() in f.regions]
    return items


async def create_festival(*, session: AsyncSession, actor: User, fields: dict[str, Any]) -> Festival:
    """Add a festival (admins); it is active at once when its window has begun."""
    _check(fields)
    if await session.scalar(select(Festival.id).where(Festival.name == fields["name"])):
        raise Conflict("a festival with this name exists", code="name_taken")
    festival = Festival(**fields)
    festival.is_active = _counts(festival, utcnow())
    session.add(festival)
    await session.flush()
    return festival


async def get_festival(*, session: AsyncSession, festival_id: uuid.UUID, lock: bool = False) -> Festival:
    """A festival by id, or ``NotFound``."""
    festival = await session.get(Festival, festival_id, with_for_update=lock)
    if festival is None:
        raise NotFound("no such festival", code="festival_not_found")
    return festival


async def update_festival(
    *, session: AsyncSession, actor: User, festival_id: uuid.UUID, changes: dict[str, Any]
) -> Festival:
    """Change a festival (admins)."""
    festival = await get_festival(session=session, festival_id=festival_id, lock=True)
    if (
        "name" in changes
        and changes["name"] != festival.name
        and await session.scalar(select(Festival.id).where(Festival.name == changes["name"]))
    ):
        raise Conflict("a festival with this name exists", code="name_taken")
    _check(
        {"starts_at": changes.get("starts_at", festival.starts_at), "ends_at": changes.get("ends_at", festival.ends_at)}
    )
    for key, value in changes.items():
        setattr(festival, key, value)
    festival.is_active = _counts(festival, utcnow())
    await session.flush()
    return festival


async def delete_festival(*, session: AsyncSession, actor: User, festival_id: uuid.UUID) -> None:
    """Remove a festival (admins); its gifts stay in the catalog as ordinary gifts (festival unset)."""
    festival = await get_festival(session=session, festival_id=festival_id, lock=True)
    await session.delete(festival)
    await session.flush()


async def bonus_multiplier(*, session: AsyncSession, region: str | None, now: datetime) -> int:
    """The daily bonus multiplier in percent at ``now`` for a user of ``region``: the largest of
    the running festivals held there or everywhere (100 when none)."""
    rows = (await session.execute(select(Festival.regions, Festival.multiplier_percent).where(running(now)))).all()
    best = 100
    for regions, percent in rows:
        if not regions or (region and region.upper() in regions):
            best = max(best, int(percent))
    return best


async def refresh(*, session: AsyncSession, now: datetime) -> dict[str, int]:
    """Set ``is_active`` from the dates: the festivals that start and end now."""
    started = await session.execute(
        update(Festival).where(running(now), Festival.is_active.is_(False)).values(is_active=True, updated_at=now)
    )
    ended = await session.execute(
        update(Festival)
        .where(
            Festival.is_active.is_(True),
            or_(Festival.enabled.is_(False), Festival.starts_at > now, Festival.ends_at <= now),
        )
        .values(is_active=False, updated_at=now)
    )
    return {
        "activated": int(getattr(started, "rowcount", 0) or 0),
        "deactivated": int(getattr(ended, "rowcount", 0) or 0),
    }


async def activate_festivals(runtime: Runtime, *, scheduled_for: datetime) -> dict[str, Any]:
    """The 01:00 job: activate festivals whose window began, deactivate ended ones (idempotent;
    it judges by the time it runs, so a late run still leaves the flags right)."""
    async with runtime.db.session() as session:
        result = await refresh(session=session, now=utcnow())
    log.info("festivals_refreshed", **result)
    return result
