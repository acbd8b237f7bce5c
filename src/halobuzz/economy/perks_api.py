"""Routes: OG tiers and memberships, the daily bonus, festivals and stream thrones (docs/economy.md)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query

from halobuzz.accounts.deps import AdminUser, CurrentUser
from halobuzz.core.deps import SessionDep, SettingsDep
from halobuzz.economy import festivals, og, thrones
from halobuzz.economy.models import Festival
from halobuzz.economy.schemas import (
    AutoRenewIn,
    DailyBonusOut,
    FestivalIn,
    FestivalList,
    FestivalOut,
    FestivalPatch,
    OgSubscriptionOut,
    OgTierIn,
    OgTierList,
    OgTierOut,
    OgTierPatch,
    SubscribeIn,
    ThroneHolder,
    ThroneOut,
)

router = APIRouter(tags=["economy"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])

IdempotencyKey = Annotated[
    str, Header(alias="Idempotency-Key", min_length=1, max_length=255, description="unique per attempt")
]


def _membership(m: og.Membership) -> OgSubscriptionOut:
    s = m.subscription
    return OgSubscriptionOut(
        id=s.id,
        user_id=s.user_id,
        tier=OgTierOut.model_validate(m.tier),
        status="active" if m.active else "expired",
        active=m.active,
        started_at=s.started_at,
        current_period_start=s.current_period_start,
        expires_at=s.expires_at,
        auto_renew=s.auto_renew,
        transaction_id=m.transaction_id,
        coins_charged=m.coins_charged if m.transaction_id is not None else None,
        balance=m.balance,
    )


def _bonus(b: og.BonusStatus) -> DailyBonusOut:
    return DailyBonusOut(
        local_date=b.local_date.isoformat(),
        timezone=b.timezone,
        claimed=b.claimed,
        base_coins=b.base_coins,
        og_bonus_coins=b.og_bonus_coins,
        og_bonus_credited=b.og_bonus_credited,
        bonus_multiplier=b.multiplier_percent / 100,
        next_claim_at=b.next_claim_at,
        coins_credited=b.coins_credited,
        balance=b.balance,
    )


def _festival(f: Festival) -> FestivalOut:
    return FestivalOut(
        id=f.id,
        name=f.name,
        regions=list(f.regions),
        starts_at=f.starts_at,
        ends_at=f.ends_at,
        bonus_multiplier=f.multiplier_percent / 100,
        enabled=f.enabled,
        is_active=f.is_active,
    )


def _festival_fields(body: dict[str, Any]) -> dict[str, Any]:
    if "bonus_multiplier" in body:
        body["multiplier_percent"] = round(body.pop("bonus_multiplier") * 100)
    if "regions" in body:
        body["regions"] = sorted(set(body["regions"]))
    return body


# --- OG -------------------------------------------------------------------------------------------


@router.get("/og/tiers", response_model=OgTierList, summary="OG tiers on sale, by level")
async def og_tiers(session: SessionDep) -> OgTierList:
    return OgTierList(items=[OgTierOut.model_validate(t) for t in await og.list_tiers(session=session)])


@router.get("/og/subscription", response_model=OgSubscriptionOut, summary="Your OG subscription")
async def my_subscription(user: CurrentUser, session: SessionDep) -> OgSubscriptionOut:
    return _membership(await og.get_membership(session=session, user_id=user.id))


@router.post("/og/subscription", response_model=OgSubscriptionOut, summary="Subscribe to (or upgrade to) an OG tier")
async def subscribe(
    body: SubscribeIn, user: CurrentUser, session: SessionDep, settings: SettingsDep, idempotency_key: IdempotencyKey
) -> OgSubscriptionOut:
    membership = await og.subscribe(
        session=session, actor=user, level=body.level, idempotency_key=idempotency_key, settings=settings.economy
    )
    return _membership(membership)


@router.post("/og/subscription/cancel", response_model=OgSubscriptionOut, summary="Turn off auto-renew")
async def cancel_subscription(user: CurrentUser, session: SessionDep) -> OgSubscriptionOut:
    return _membership(await og.set_auto_renew(session=session, actor=user, auto_renew=False))


@router.patch("/og/subscription", response_model=OgSubscriptionOut, summary="Turn auto-renew on or off")
async def patch_subscription(body: AutoRenewIn, user: CurrentUser, session: SessionDep) -> OgSubscriptionOut:
    return _membership(await og.set_auto_renew(session=session, actor=user, auto_renew=body.auto_renew))


@admin_router.get("/og/tiers", response_model=OgTierList, summary="Every OG tier (admins)")
async def admin_og_tiers(admin: AdminUser, session: SessionDep) -> OgTierList:
    items = await og.list_tiers(session=session, include_inactive=True)
    return OgTierList(items=[OgTierOut.model_validate(t) for t in items])


@admin_router.post("/og/tiers", response_model=OgTierOut, status_code=201, summary="Add an OG tier (admins)")
async def admin_create_og_tier(body: OgTierIn, admin: AdminUser, session: SessionDep) -> OgTierOut:
    return OgTierOut.model_validate(await og.create_tier(session=session, actor=admin, fields=body.model_dump()))


@admin_router.patch("/og/tiers/{tier_id}", response_model=OgTierOut, summary="Change an OG tier (admins)")
async def admin_update_og_tier(
    tier_id: uuid.UUID, body: OgTierPatch, admin: AdminUser, session: SessionDep
) -> OgTierOut:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    return OgTierOut.model_validate(
        await og.update_tier(session=session, actor=admin, tier_id=tier_id, changes=changes)
    )


# --- daily bonus ----------------------------------------------------------------------------------


@router.get("/bonus/daily", response_model=DailyBonusOut, summary="Today's daily bonus: claimed? worth?")
async def daily_bonus(user: CurrentUser, session: SessionDep, settings: SettingsDep) -> DailyBonusOut:
    return _bonus(await og.bonus_status(session=session, user=user, settings=settings.economy))


@router.post("/bonus/daily/claim", response_model=DailyBonusOut, summary="Claim today's daily bonus")
async def claim_daily_bonus(user: CurrentUser, session: SessionDep, settings: SettingsDep) -> DailyBonusOut:
    return _bonus(await og.claim_daily_bonus(session=session, actor=user, settings=settings.economy))


# --- festivals ------------------------------------------------------------------------------------


@router.get("/festivals", response_model=FestivalList, summary="Festivals running now")
async def active_festivals(
    session: SessionDep,
    region: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$", description="a country code")] = None,
) -> FestivalList:
    items = await festivals.list_festivals(session=session, active_only=True, region=region)
    return FestivalList(items=[_festival(f) for f in items])


@admin_router.get("/festivals", response_model=FestivalList, summary="Every festival (admins)")
async def admin_festivals(admin: AdminUser, session: SessionDep) -> FestivalList:
    items = await festivals.list_festivals(session=session, active_only=False)
    return FestivalList(items=[_festival(f) for f in items])


@admin_router.post("/festivals", response_model=FestivalOut, status_code=201, summary="Add a festival (admins)")
async def admin_create_festival(body: FestivalIn, admin: AdminUser, session: SessionDep) -> FestivalOut:
    festival = await festivals.create_festival(session=session, actor=admin, fields=_festival_fields(body.model_dump()))
    return _festival(festival)


@admin_router.get("/festivals/{festival_id}", response_model=FestivalOut, summary="One festival (admins)")
async def admin_festival(festival_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> FestivalOut:
    return _festival(await festivals.get_festival(session=session, festival_id=festival_id))


@admin_router.patch("/festivals/{festival_id}", response_model=FestivalOut, summary="Change a festival (admins)")
async def admin_update_festival(
    festival_id: uuid.UUID, body: FestivalPatch, admin: AdminUser, session: SessionDep
) -> FestivalOut:
    changes = _festival_fields(body.model_dump(exclude_unset=True, exclude_none=True))
    festival = await festivals.update_festival(session=session, actor=admin, festival_id=festival_id, changes=changes)
    return _festival(festival)


@admin_router.delete("/festivals/{festival_id}", status_code=204, summary="Remove a festival (admins)")
async def admin_delete_festival(festival_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> None:
    await festivals.delete_festival(session=session, actor=admin, festival_id=festival_id)


# --- thrones --------------------------------------------------------------------------------------


@router.get(
    "/streams/{stream_id}/throne", response_model=ThroneOut, summary="Who holds a stream's throne (its top gifter)"
)
async def throne(
    stream_id: Annotated[uuid.UUID, Path(description="stream id")], session: SessionDep, settings: SettingsDep
) -> ThroneOut:
    view = await thrones.get_throne(
        session=session, stream_id=stream_id, window=timedelta(hours=settings.economy.throne_window_hours)
    )
    h = view.holder
    return ThroneOut(
        stream_id=view.stream_id,
        holder=None if h is None else ThroneHolder(id=h.user_id, username=h.username, display_name=h.display_name),
        coins=0 if h is None else h.coins,
        since=view.since,
        window_hours=view.window_hours,
    )
