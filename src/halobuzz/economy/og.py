"""OG tiers: monthly memberships bought with coins, their renewal, and the daily bonus (docs/economy.md).

Every coin movement goes through ``ledger.post_transaction``. Operations on one user's membership
or bonus lock that user's row first (``SELECT … FOR UPDATE``; on SQLite the write transaction is
already exclusive), so two subscribes or two claims of one user serialize; the ledger's idempotency
keys make a repeated posting a no-op.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.config import EconomySettings
from halobuzz.core import events
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import Conflict, InvalidInput, NotFound
from halobuzz.economy import festivals, ledger
from halobuzz.economy.models import OgSubscription, OgTier

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)

MAX_IDEMPOTENCY_KEY = 255
TIER_FIELDS = ("level", "name", "monthly_price", "daily_bonus", "badge", "chat_privileges", "is_active")
CHAT_PRIVILEGES = ("subscriber_chat", "highlighted_messages", "custom_color", "bypass_slow_mode", "og_emotes")


# --- tiers --------------------------------------------------------------------------------------


async def list_tiers(*, session: AsyncSession, include_inactive: bool = False) -> list[OgTier]:
    """OG tiers by level (every tier for admins, else those on sale)."""
    query = select(OgTier).order_by(OgTier.level)
    if not include_inactive:
        query = query.where(OgTier.is_active.is_(True))
    return list((await session.scalars(query)).all())


def _check_privileges(values: list[str]) -> list[str]:
    unknown = sorted(set(values) - set(CHAT_PRIVILEGES))
    if unknown:
        raise InvalidInput(
            f"unknown chat privileges {', '.join(unknown)}; use {', '.join(CHAT_PRIVILEGES)}",
            code="invalid_privileges",
        )
    return sorted(set(values))


async def create_tier(*, session: AsyncSession, actor: User, fields: dict[str, Any]) -> OgTier:
    """Add an OG tier (admins); level and name are unique."""
    fields["chat_privileges"] = _check_privileges(fields.get("chat_privileges", []))
    await _check_unique(session, None, fields)
    tier = OgTier(**fields)
    session.add(tier)
    await session.flush()
    return tier


async def _check_unique(session: AsyncSession, tier_id: uuid.UUID | None, fields: dict[str, Any]) -> None:
    for column, code in ((OgTier.level, "level_taken"), (OgTier.name, "name_taken")):
        value = fields.get(column.key)
        if value is None:
            continue
        other = await session.scalar(select(OgTier.id).where(column == value))
        if other is not None and other != tier_id:
            raise Conflict(f"an OG tier with this {column.key} exists", code=code)


async def update_tier(*, session: AsyncSession, actor: User, tier_id: uuid.UUID, changes: dict[str, Any]) -> OgTier:
    """Change an OG tier (admins); running subscriptions keep their term, renewals pay the new price."""
    tier = await session.get(OgTier, tier_id, with_for_update=True)
    if tier is None:
        raise NotFound("no such OG tier", code="tier_not_found")
    if "chat_privileges" in changes:
        changes["chat_privileges"] = _check_privileges(changes["chat_privileges"])
    await _check_unique(session, tier.id, changes)
    for key, value in changes.items():
        setattr(tier, key, value)
    await session.flush()
    return tier


# --- membership ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Membership:
    subscription: OgSubscription
    tier: OgTier
    active: bool
    transaction_id: uuid.UUID | None = None
    coins_charged: int = 0
    balance: int | None = None


def _is_active(sub: OgSubscription, now: datetime) -> bool:
    return sub.status == "active" and sub.expires_at > now


async def get_membership(*, session: AsyncSession, user_id: uuid.UUID) -> Membership:
    """The user's OG subscription (active or lapsed), or ``NotFound``."""
    row = (
        await session.execute(
            select(OgSubscription, OgTier)
            .join(OgTier, OgTier.id == OgSubscription.tier_id)
            .where(OgSubscription.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("you have no OG subscription", code="not_subscribed")
    sub, tier = row
    return Membership(sub, tier, _is_active(sub, utcnow()))


async def active_tier(*, session: AsyncSession, user_id: uuid.UUID, now: datetime | None = None) -> OgTier | None:
    """The tier of the user's active OG subscription, if any."""
    now = now or utcnow()
    return await session.scalar(
        select(OgTier)
        .join(OgSubscription, OgSubscription.tier_id == OgTier.id)
        .where(
            OgSubscription.user_id == user_id,
            OgSubscription.status == "active",
            OgSubscription.expires_at > now,
        )
    )


async def is_og_member(session: AsyncSession, owner_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Subscribers-only chat admits any active OG member (the owner and moderators always pass)."""
    found = await session.scalar(
        select(OgSubscription.id).where(
            OgSubscription.user_id == user_id,
            OgSubscription.status == "active",
            OgSubscription.expires_at > utcnow(),
        )
    )
    return found is not None


def _request_hash(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


async def _lock_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.scalar(
        select(User).where(User.id == user_id).with_for_update().execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFound("no such user", code="user_not_found")
    return user


def upgrade_credit(*, old_price: int, period_start: datetime, expires_at: datetime, now: datetime) -> int:
    """Coins still unused of the current term: the old price times the remaining share, floored."""
    total = (expires_at - period_start).total_seconds()
    left = max(0.0, (expires_at - now).total_seconds())
    if total <= 0:
        return 0
    return int(old_price * min(1.0, left / total))


async def subscribe(
    *,
    session: AsyncSession,
    actor: User,
    level: int,
    idempotency_key: str,
    settings: EconomySettings,
) -> Membership:
    """Buy (or upgrade to) the OG tier ``level``: the price is debited to platform revenue.

    A new term lasts ``og_period_days``. Upgrading an active membership charges the new price less
    the unused share of the current term (``upgrade_credit``) and starts a new term; downgrading or
    re-buying the held tier is refused. Idempotent per (actor, key): a retry answers with the
    membership; another request under the key is refused. Serialized per user by the user's row lock.
    """
    if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(
            f"an Idempotency-Key of 1 to {MAX_IDEMPOTENCY_KEY} characters is required", code="invalid_idempotency_key"
        )
    request_hash = _request_hash("og_subscription", str(level))
    await _lock_user(session, actor.id)
    existing = await ledger.find_transaction(session=session, actor_id=actor.id, idempotency_key=idempotency_key)
    if existing is not None:
        if existing.kind != "og_subscription" or existing.request_hash != request_hash:
            raise Conflict(
                "this Idempotency-Key was used for a different request; use a new key", code="idempotency_key_reused"
            )
        found = await get_membership(session=session, user_id=actor.id)
        return Membership(
            found.subscription,
            found.tier,
            found.active,
            existing.id,
            int(existing.meta.get("coins_charged", 0)),
            None,
        )
    tier = await session.scalar(select(OgTier).where(OgTier.level == level, OgTier.is_active.is_(True)))
    if tier is None:
        raise NotFound("no such OG tier on sale", code="tier_not_found")
    now = utcnow()
    sub = await session.scalar(
        select(OgSubscription)
        .where(OgSubscription.user_id == actor.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    charge = tier.monthly_price
    upgraded_from: int | None = None
    if sub is not None and _is_active(sub, now):
        current = await session.get(OgTier, sub.tier_id)
        assert current is not None
        if current.level == tier.level:
            raise Conflict("you already hold this OG tier", code="already_subscribed")
        if current.level > tier.level:
            raise Conflict(
                "you hold a higher OG tier; turn off auto-renew and subscribe again once it ends",
                code="downgrade_not_allowed",
                details={"current_level": current.level},
            )
        credit = upgrade_credit(
            old_price=current.monthly_price, period_start=sub.current_period_start, expires_at=sub.expires_at, now=now
        )
        charge = max(0, tier.monthly_price - credit)
        upgraded_from = current.level
    meta = {"tier_level": tier.level, "tier": tier.name, "coins_charged": charge, "upgraded_from": upgraded_from}
    tx_id: uuid.UUID | None = None
    balance: int | None = None
    if charge > 0:
        posted = await ledger.post_transaction(
            session=session,
            kind="og_subscription",
            legs=[
                ledger.Leg(ledger.user_coins(actor.id), -charge),
                ledger.Leg(ledger.platform("platform_revenue"), charge),
            ],
            actor_id=actor.id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            meta=meta,
        )
        tx_id, balance = posted.transaction.id, posted.balances[ledger.user_coins(actor.id).key]
    expires_at = now + timedelta(days=settings.og_period_days)
    if sub is None:
        sub = OgSubscription(
            user_id=actor.id,
            tier_id=tier.id,
            status="active",
            started_at=now,
            current_period_start=now,
            expires_at=expires_at,
            auto_renew=True,
        )
        session.add(sub)
    else:
        if not _is_active(sub, now):
            sub.started_at = now
        sub.tier_id, sub.status, sub.current_period_start = tier.id, "active", now
        sub.expires_at, sub.auto_renew = expires_at, True
    await session.flush()
    _announce(session, sub, tier, actor.id)
    return Membership(sub, tier, True, tx_id, charge, balance)


def _announce(session: AsyncSession, sub: OgSubscription, tier: OgTier, user_id: uuid.UUID) -> None:
    events.emit(
        session,
        "subscription.new",
        {
            "user_id": user_id,
            "tier": tier.name,
            "tier_level": tier.level,
            "subscription_id": sub.id,
            "expires_at": sub.expires_at,
        },
        actor_id=user_id,
    )


async def set_auto_renew(*, session: AsyncSession, actor: User, auto_renew: bool) -> Membership:
    """Turn the membership's auto-renew off (cancel: it runs to its end) or back on."""
    await _lock_user(session, actor.id)
    found = await get_membership(session=session, user_id=actor.id)
    if not found.active:
        raise Conflict("your OG subscription has ended", code="subscription_ended")
    found.subscription.auto_renew = auto_renew
    await session.flush()
    return found


async def renew_due(
    *, session: AsyncSession, now: datetime, horizon: timedelta, settings: EconomySettings
) -> dict[str, int]:
    """Renew memberships ending before ``now + horizon`` whose auto-renew is on and whose wallet
    can pay the tier's current price; expire those that ended and cannot renew.

    Each renewal's posting has the key ``og_renewal:<subscription id>:<old expiry>``, so a
    re-run of the job cannot charge one term twice.
    """
    out = {"renewed": 0, "expired": 0, "unpaid": 0}
    ids = (
        await session.scalars(
            select(OgSubscription.user_id).where(
                OgSubscription.status == "active", OgSubscription.expires_at <= now + horizon
            )
        )
    ).all()
    for user_id in ids:
        await _lock_user(session, user_id)
        sub = await session.scalar(
            select(OgSubscription)
            .where(OgSubscription.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if sub is None or sub.status != "active" or sub.expires_at > now + horizon:
            continue
        tier = await session.get(OgTier, sub.tier_id)
        assert tier is not None
        renewed = False
        if sub.auto_renew and tier.is_active:
            key = f"og_renewal:{sub.id}:{sub.expires_at.isoformat()}"
            try:
                async with session.begin_nested():
                    await ledger.post_transaction(
                        session=session,
                        kind="og_renewal",
                        legs=[
                            ledger.Leg(ledger.user_coins(user_id), -tier.monthly_price),
                            ledger.Leg(ledger.platform("platform_revenue"), tier.monthly_price),
                        ],
                        actor_id=user_id,
                        idempotency_key=key,
                        meta={"tier_level": tier.level, "tier": tier.name, "coins_charged": tier.monthly_price},
                    )
                renewed = True
            except ledger.InsufficientFunds:
                out["unpaid"] += 1
        if renewed:
            sub.current_period_start = sub.expires_at
            sub.expires_at = sub.expires_at + timedelta(days=settings.og_period_days)
            out["renewed"] += 1
            _announce(session, sub, tier, user_id)
        elif sub.expires_at <= now:
            sub.status = "expired"
            out["expired"] += 1
        await session.flush()
    return out


# --- daily bonus --------------------------------------------------------------------------------


def user_zone(user: User) -> ZoneInfo:
    """The user's timezone (their profile's; UTC when it is not a known zone)."""
    try:
        return ZoneInfo(user.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _tomorrow_start(day: date, zone: ZoneInfo) -> datetime:
    nxt = day + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)


@dataclass(frozen=True, slots=True)
class BonusStatus:
    local_date: date
    timezone: str
    claimed: bool
    base_coins: int
    og_bonus_coins: int
    og_bonus_credited: bool
    multiplier_percent: int
    next_claim_at: datetime
    coins_credited: int = 0
    balance: int | None = None


async def _amounts(session: AsyncSession, user: User, now: datetime, settings: EconomySettings) -> tuple[int, int, int]:
    percent = await festivals.bonus_multiplier(session=session, region=user.country, now=now)
    tier = await active_tier(session=session, user_id=user.id, now=now)
    base = settings.daily_bonus_coins * percent // 100
    og_bonus = (tier.daily_bonus if tier else 0) * percent // 100
    return base, og_bonus, percent


async def bonus_status(*, session: AsyncSession, user: User, settings: EconomySettings) -> BonusStatus:
    """Whether today's (the user's local day) bonus was claimed and what it is worth."""
    now = utcnow()
    zone = user_zone(user)
    day = now.astimezone(zone).date()
    base, og_bonus, percent = await _amounts(session, user, now, settings)
    claimed = await ledger.find_transaction(session=session, actor_id=user.id, idempotency_key=f"daily_bonus:{day}")
    og_done = await ledger.find_transaction(session=session, actor_id=user.id, idempotency_key=f"og_daily_bonus:{day}")
    return BonusStatus(
        day, str(zone), claimed is not None, base, og_bonus, og_done is not None, percent, _tomorrow_start(day, zone)
    )


async def _credit(
    session: AsyncSession, user_id: uuid.UUID, kind: str, key: str, coins: int, meta: dict[str, Any]
) -> ledger.Posted:
    return await ledger.post_transaction(
        session=session,
        kind=kind,
        legs=[
            ledger.Leg(ledger.platform("platform_promotions"), -coins),
            ledger.Leg(ledger.user_coins(user_id), coins),
        ],
        actor_id=user_id,
        idempotency_key=key,
        meta=meta,
    )


async def claim_daily_bonus(*, session: AsyncSession, actor: User, settings: EconomySettings) -> BonusStatus:
    """Credit today's bonus (``daily_bonus_coins`` plus an OG member's tier bonus, times the
    festival multiplier) from platform promotions, once per local day.

    The postings' idempotency keys (``daily_bonus:<local date>`` and ``og_daily_bonus:<local
    date>``) make a second claim of the day — however concurrent — credit nothing (409
    ``already_claimed``); the tier bonus is skipped when the 00:00 job already paid it.
    """
    now = utcnow()
    zone = user_zone(actor)
    day = now.astimezone(zone).date()
    await _lock_user(session, actor.id)
    base, og_bonus, percent = await _amounts(session, actor, now, settings)
    key = f"daily_bonus:{day}"
    if await ledger.find_transaction(session=session, actor_id=actor.id, idempotency_key=key) is not None:
        raise Conflict(
            "today's bonus was already claimed",
            code="already_claimed",
            details={"next_claim_at": _tomorrow_start(day, zone).isoformat()},
        )
    meta = {"local_date": str(day), "timezone": str(zone), "multiplier_percent": percent}
    credited = 0
    balance: int | None = None
    if base > 0:
        posted = await _credit(session, actor.id, "daily_bonus", key, base, {**meta, "coins": base})
        credited += base
        balance = posted.balances[ledger.user_coins(actor.id).key]
    og_key = f"og_daily_bonus:{day}"
    og_credited = await ledger.find_transaction(session=session, actor_id=actor.id, idempotency_key=og_key) is not None
    if og_bonus > 0 and not og_credited:
        posted = await _credit(session, actor.id, "og_daily_bonus", og_key, og_bonus, {**meta, "coins": og_bonus})
        credited += og_bonus
        og_credited = True
        balance = posted.balances[ledger.user_coins(actor.id).key]
    if base == 0 and not credited:
        raise Conflict("there is no bonus to claim today", code="no_bonus")
    return BonusStatus(
        day, str(zone), True, base, og_bonus, og_credited, percent, _tomorrow_start(day, zone), credited, balance
    )


async def distribute_og_bonus(*, session: AsyncSession, now: datetime, settings: EconomySettings) -> dict[str, int]:
    """Credit every active OG member their tier's daily bonus (times the festival multiplier) for
    their local day at ``now``; members already paid that day are skipped (same key as a claim)."""
    out = {"credited": 0, "skipped": 0, "coins": 0}
    rows = (
        await session.execute(
            select(User, OgTier)
            .join(OgSubscription, OgSubscription.user_id == User.id)
            .join(OgTier, OgTier.id == OgSubscription.tier_id)
            .where(OgSubscription.status == "active", OgSubscription.expires_at > now, OgTier.daily_bonus > 0)
            .order_by(User.id)
        )
    ).all()
    for user, tier in rows:
        zone = user_zone(user)
        day = now.astimezone(zone).date()
        percent = await festivals.bonus_multiplier(session=session, region=user.country, now=now)
        coins = tier.daily_bonus * percent // 100
        posted = await _credit(
            session,
            user.id,
            "og_daily_bonus",
            f"og_daily_bonus:{day}",
            coins,
            {"local_date": str(day), "timezone": str(zone), "multiplier_percent": percent, "coins": coins, "job": True},
        )
        if posted.created:
            out["credited"] += 1
            out["coins"] += coins
        else:
            out["skipped"] += 1
    return out


async def distribute_daily_bonus(runtime: Runtime, *, scheduled_for: datetime) -> dict[str, Any]:
    """The 00:00 job: renew or expire OG memberships ending within a day, then pay OG members'
    daily bonus. Idempotent for its slot (every posting has a per-day or per-term key)."""
    settings = runtime.settings.economy
    async with runtime.db.session() as session:
        renewals = await renew_due(session=session, now=scheduled_for, horizon=timedelta(days=1), settings=settings)
    async with runtime.db.session() as session:
        bonus = await distribute_og_bonus(session=session, now=scheduled_for, settings=settings)
    log.info("og_daily", renewals=renewals, bonus=bonus)
    return {"renewals": renewals, "bonus": bonus}
