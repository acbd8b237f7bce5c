"""Routes: creator payouts, earnings summary, the admin payout queue and economy flags (KYC: halobuzz.kyc)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from halobuzz.accounts.deps import AdminUser, CurrentUser
from halobuzz.core.deps import PageDep, SessionDep, SettingsDep
from halobuzz.economy import fraud, payouts

router = APIRouter(tags=["payouts"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])

PayoutId = Annotated[uuid.UUID, Path(description="payout id")]


class PayoutIn(BaseModel):
    coins: int = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)
    method: str = Field(min_length=1, max_length=32)
    destination: str = Field(min_length=1, max_length=255)


class PayoutOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    coins: int
    currency: str
    amount: int
    rate: int
    method: str
    destination: str
    status: str
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


class PayoutPageOut(BaseModel):
    items: list[PayoutOut]
    next_cursor: str | None


class RejectIn(BaseModel):
    reason: str = Field("", max_length=500)


class EarningsOut(BaseModel):
    total_earned: int
    available: int
    pending_payouts: int
    paid_out: int
    by_period: dict[str, int]


@router.post("/payouts", response_model=PayoutOut, status_code=201, summary="Request a payout of your earnings")
async def request_payout(
    body: PayoutIn,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str, Header(alias="Idempotency-Key", min_length=1, max_length=200, description="unique per payout request")
    ],
) -> PayoutOut:
    payout, _ = await payouts.request_payout(
        session=session,
        actor=user,
        settings=settings.payouts,
        coins=body.coins,
        currency=body.currency,
        method=body.method,
        destination=body.destination,
        idempotency_key=idempotency_key,
    )
    return PayoutOut.model_validate(payout)


@router.get("/payouts", response_model=PayoutPageOut, summary="Your payouts, newest first")
async def my_payouts(user: CurrentUser, session: SessionDep, page: PageDep) -> PayoutPageOut:
    result = await payouts.list_payouts(
        session=session, user_id=user.id, status=None, limit=page.limit, cursor=page.cursor
    )
    return PayoutPageOut(items=[PayoutOut.model_validate(p) for p in result.items], next_cursor=result.next_cursor)


@router.get("/wallet/earnings", response_model=EarningsOut, summary="Your creator earnings and payouts")
async def earnings(user: CurrentUser, session: SessionDep) -> EarningsOut:
    s = await payouts.earnings_summary(session=session, user=user)
    return EarningsOut(
        total_earned=s.total_earned,
        available=s.available,
        pending_payouts=s.pending_payouts,
        paid_out=s.paid_out,
        by_period=s.by_period,
    )


@admin_router.get("/payouts", response_model=PayoutPageOut, summary="Payout requests (admins)")
async def admin_payouts(
    admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    status: Annotated[str | None, Query(description="pending, posted or voided")] = None,
) -> PayoutPageOut:
    result = await payouts.list_payouts(
        session=session, user_id=None, status=status, limit=page.limit, cursor=page.cursor
    )
    return PayoutPageOut(items=[PayoutOut.model_validate(p) for p in result.items], next_cursor=result.next_cursor)


@admin_router.post("/payouts/{payout_id}/approve", response_model=PayoutOut, summary="Mark a payout paid (admins)")
async def approve(payout_id: PayoutId, admin: AdminUser, session: SessionDep) -> PayoutOut:
    return PayoutOut.model_validate(await payouts.approve_payout(session=session, admin=admin, payout_id=payout_id))


@admin_router.post("/payouts/{payout_id}/reject", response_model=PayoutOut, summary="Reject a payout (admins)")
async def reject(payout_id: PayoutId, body: RejectIn, admin: AdminUser, session: SessionDep) -> PayoutOut:
    payout = await payouts.reject_payout(session=session, admin=admin, payout_id=payout_id, reason=body.reason)
    return PayoutOut.model_validate(payout)


class FlagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID | None
    kind: str
    transaction_id: uuid.UUID | None
    payment_intent_id: uuid.UUID | None
    details: dict[str, Any]
    status: str
    resolved_by: uuid.UUID | None
    resolved_at: datetime | None
    resolution: str | None
    created_at: datetime


class FlagPageOut(BaseModel):
    items: list[FlagOut]
    next_cursor: str | None


class ResolveIn(BaseModel):
    resolution: str = Field("", max_length=500)


@admin_router.get("/economy/flags", response_model=FlagPageOut, summary="Flagged economy activity (admins)")
async def flags(
    admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    status: Annotated[str | None, Query(description="open or resolved")] = None,
) -> FlagPageOut:
    result = await fraud.list_flags(session=session, status=status, limit=page.limit, cursor=page.cursor)
    return FlagPageOut(items=[FlagOut.model_validate(f) for f in result.items], next_cursor=result.next_cursor)


@admin_router.post("/economy/flags/{flag_id}/resolve", response_model=FlagOut, summary="Resolve a flag (admins)")
async def resolve_flag(flag_id: uuid.UUID, body: ResolveIn, admin: AdminUser, session: SessionDep) -> FlagOut:
    row = await fraud.resolve_flag(session=session, admin=admin, flag_id=flag_id, resolution=body.resolution)
    return FlagOut.model_validate(row)
