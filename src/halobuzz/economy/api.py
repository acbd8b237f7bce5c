"""Routes: wallet, coin packages, the gift catalog, sending gifts and gift leaderboards."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request

from halobuzz.accounts import auth
from halobuzz.accounts.deps import AdminUser, CurrentUser, _bearer
from halobuzz.core.deps import PageDep, RuntimeDep, SessionDep
from halobuzz.core.errors import Unauthorized
from halobuzz.core.runtime import Runtime
from halobuzz.economy import batch, service
from halobuzz.economy.schemas import (
    CoinPackageIn,
    CoinPackageList,
    CoinPackageOut,
    CoinPackagePatch,
    GiftBrief,
    GiftIn,
    GiftList,
    GiftOut,
    GiftPatch,
    GiftReceiptOut,
    LeaderboardItem,
    LeaderboardOut,
    LeaderboardUser,
    SendGiftIn,
    WalletEntryOut,
    WalletEntryPage,
    WalletOut,
)

router = APIRouter(tags=["economy"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])

StreamId = Annotated[uuid.UUID, Path(description="stream id")]


@router.get("/wallet", response_model=WalletOut, summary="Your coin balance and creator earnings")
async def wallet(user: CurrentUser, session: SessionDep) -> WalletOut:
    w = await service.get_wallet(session=session, user=user)
    return WalletOut(user_id=w.user_id, balance=w.balance, earnings_balance=w.earnings_balance, currency=w.currency)


@router.get("/wallet/transactions", response_model=WalletEntryPage, summary="Your ledger entries, newest first")
async def wallet_transactions(user: CurrentUser, session: SessionDep, page: PageDep) -> WalletEntryPage:
    result = await service.list_wallet_entries(session=session, user=user, limit=page.limit, cursor=page.cursor)
    return WalletEntryPage(
        items=[WalletEntryOut.model_validate(e) for e in result.items], next_cursor=result.next_cursor
    )


@router.get("/coin-packages", response_model=CoinPackageList, summary="Coin packages on sale")
async def coin_packages(session: SessionDep) -> CoinPackageList:
    packages = await service.list_coin_packages(session=session)
    return CoinPackageList(items=[CoinPackageOut.model_validate(p) for p in packages])


@router.get("/gifts", response_model=GiftList, summary="Gifts on offer now")
async def gifts(session: SessionDep) -> GiftList:
    return GiftList(items=[GiftOut.model_validate(g) for g in await service.list_gifts(session=session)])


async def gift_sender(request: Request) -> uuid.UUID:
    """The signed-in sender's id, the token checked through the session cache (a short read-only
    session of its own on a miss): the gift itself runs in a shared batch transaction
    (economy.batch), so the request holds no connection meanwhile."""
    rt: Runtime = request.app.state.runtime
    token = _bearer(request)
    if token is None:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <access token>'", code="not_authenticated")
    claims = await auth.authenticate_cached(db=rt.db, sessions=rt.sessions, jwt=rt.jwt, token=token)
    request.scope.setdefault("state", {})["user_id"] = str(claims.user_id)
    return claims.user_id


@router.post("/streams/{stream_id}/gifts", response_model=GiftReceiptOut, summary="Send a gift to a live stream")
async def send_gift(
    stream_id: StreamId,
    body: SendGiftIn,
    sender_id: Annotated[uuid.UUID, Depends(gift_sender)],
    rt: RuntimeDep,
    idempotency_key: Annotated[
        str, Header(alias="Idempotency-Key", min_length=1, max_length=255, description="unique per gift attempt")
    ],
) -> GiftReceiptOut:
    receipt = await batch.batcher_of(rt).send(
        batch.GiftRequest(
            actor_id=sender_id,
            stream_id=stream_id,
            gift_id=body.gift_id,
            quantity=body.quantity,
            idempotency_key=idempotency_key,
        )
    )
    return receipt_out(receipt)


def receipt_out(receipt: service.GiftReceipt) -> GiftReceiptOut:
    """The answer to a gift (the route's and the fast path's, economy.fastpaths)."""
    return GiftReceiptOut(
        id=receipt.id,
        gift=GiftBrief.model_validate(receipt.gift),
        quantity=receipt.quantity,
        coins_spent=receipt.coins_spent,
        balance=receipt.balance,
    )


@router.get(
    "/streams/{stream_id}/gifts/leaderboard", response_model=LeaderboardOut, summary="Top gift senders of a broadcast"
)
async def leaderboard(
    stream_id: StreamId,
    session: SessionDep,
    broadcast_id: Annotated[uuid.UUID | None, Query(description="a past broadcast; default the current one")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> LeaderboardOut:
    found, rows = await service.gift_leaderboard(
        session=session, stream_id=stream_id, broadcast_id=broadcast_id, limit=limit
    )
    return LeaderboardOut(
        stream_id=stream_id,
        broadcast_id=found,
        items=[
            LeaderboardItem(
                rank=i + 1,
                user=LeaderboardUser(id=r.user_id, username=r.username, display_name=r.display_name),
                coins=r.coins,
                gifts=r.gifts,
            )
            for i, r in enumerate(rows)
        ],
    )


@admin_router.get("/coin-packages", response_model=CoinPackageList, summary="Every coin package (admins)")
async def admin_coin_packages(admin: AdminUser, session: SessionDep) -> CoinPackageList:
    packages = await service.list_coin_packages(session=session, include_inactive=True)
    return CoinPackageList(items=[CoinPackageOut.model_validate(p) for p in packages])


@admin_router.post(
    "/coin-packages", response_model=CoinPackageOut, status_code=201, summary="Add a coin package (admins)"
)
async def admin_create_coin_package(body: CoinPackageIn, admin: AdminUser, session: SessionDep) -> CoinPackageOut:
    package = await service.create_coin_package(session=session, actor=admin, **body.model_dump())
    return CoinPackageOut.model_validate(package)


@admin_router.patch(
    "/coin-packages/{package_id}", response_model=CoinPackageOut, summary="Change a coin package (admins)"
)
async def admin_update_coin_package(
    package_id: uuid.UUID, body: CoinPackagePatch, admin: AdminUser, session: SessionDep
) -> CoinPackageOut:
    package = await service.update_coin_package(
        session=session,
        actor=admin,
        package_id=package_id,
        changes=body.model_dump(exclude_unset=True, exclude_none=True),
    )
    return CoinPackageOut.model_validate(package)


@admin_router.delete(
    "/coin-packages/{package_id}", response_model=CoinPackageOut, summary="Take a coin package off sale (admins)"
)
async def admin_delete_coin_package(package_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> CoinPackageOut:
    package = await service.update_coin_package(
        session=session, actor=admin, package_id=package_id, changes={"is_active": False}
    )
    return CoinPackageOut.model_validate(package)


@admin_router.get("/gifts", response_model=GiftList, summary="Every catalog gift (admins)")
async def admin_gifts(admin: AdminUser, session: SessionDep) -> GiftList:
    items = await service.list_gifts(session=session, include_inactive=True)
    return GiftList(items=[GiftOut.model_validate(g) for g in items])


@admin_router.post("/gifts", response_model=GiftOut, status_code=201, summary="Add a gift (admins)")
async def admin_create_gift(body: GiftIn, admin: AdminUser, session: SessionDep) -> GiftOut:
    return GiftOut.model_validate(await service.create_gift(session=session, actor=admin, fields=body.model_dump()))


@admin_router.patch("/gifts/{gift_id}", response_model=GiftOut, summary="Change a gift (admins)")
async def admin_update_gift(gift_id: uuid.UUID, body: GiftPatch, admin: AdminUser, session: SessionDep) -> GiftOut:
    # null clears only the availability window; other fields keep their value when null.
    changes = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if v is not None or k in ("available_from", "available_until", "festival_id")
    }
    gift = await service.update_gift(session=session, actor=admin, gift_id=gift_id, changes=changes)
    return GiftOut.model_validate(gift)


@admin_router.delete("/gifts/{gift_id}", response_model=GiftOut, summary="Withdraw a gift (admins)")
async def admin_delete_gift(gift_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> GiftOut:
    gift = await service.update_gift(session=session, actor=admin, gift_id=gift_id, changes={"is_active": False})
    return GiftOut.model_validate(gift)
