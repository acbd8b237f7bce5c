"""Helpers for the economy tests: creators with live streams, gifts made through the admin API,
and coins granted through the ledger (a promotion posting)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from halobuzz.app import HaloBuzzApp
from halobuzz.economy import ledger
from halobuzz.economy.models import GiftSent, LedgerEntry, LedgerTransaction
from tests.realtime.support import live, sockets

__all__ = ["live", "sockets"]


@pytest.fixture
async def admin(make_user: Callable[..., Any]) -> Any:
    return await make_user(roles=["admin"])


@pytest.fixture
async def creator(make_user: Callable[..., Any]) -> Any:
    return await make_user(roles=["creator"])


@pytest.fixture
async def fan(make_user: Callable[..., Any]) -> Any:
    return await make_user()


@pytest.fixture
def live_stream(client: httpx.AsyncClient) -> Callable[..., Any]:
    """A stream owned by ``owner``, live (or not, with ``live=False``); returns its id."""

    async def create(owner: Any, *, live: bool = True) -> str:
        r = await client.post("/api/v1/streams", json={"title": "gift test"}, headers=owner.headers)
        assert r.status_code == 201, r.text
        stream_id: str = r.json()["id"]
        if live:
            r = await client.post(f"/api/v1/streams/{stream_id}/start", headers=owner.headers)
            assert r.status_code == 200, r.text
        return stream_id

    return create


@pytest.fixture
def make_gift(client: httpx.AsyncClient, admin: Any) -> Callable[..., Any]:
    async def create(coin_price: int = 10, **fields: Any) -> dict[str, Any]:
        body = {"name": f"gift-{uuid.uuid4().hex[:8]}", "coin_price": coin_price, **fields}
        r = await client.post("/api/v1/admin/gifts", json=body, headers=admin.headers)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    return create


async def grant_coins(app: HaloBuzzApp, user_id: uuid.UUID, coins: int) -> None:
    """Give a user coins from the promotions account (as a bonus campaign would)."""
    async with app.runtime.db.session() as session:
        await ledger.post_transaction(
            session=session,
            kind="promotion",
            legs=[
                ledger.Leg(ledger.platform("platform_promotions"), -coins),
                ledger.Leg(ledger.user_coins(user_id), coins),
            ],
        )


async def verify(app: HaloBuzzApp) -> ledger.LedgerReport:
    async with app.runtime.db.session(write=False) as session:
        return await ledger.verify_ledger(session)


async def counts(app: HaloBuzzApp) -> tuple[int, int, int]:
    """Ledger transactions, entries and gift rows stored."""
    async with app.runtime.db.session(write=False) as session:
        return (
            int(await session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0),
            int(await session.scalar(select(func.count()).select_from(LedgerEntry)) or 0),
            int(await session.scalar(select(func.count()).select_from(GiftSent)) or 0),
        )


@pytest.fixture
def make_tier(client: httpx.AsyncClient, admin: Any) -> Callable[..., Any]:
    """An OG tier made through the admin API."""

    async def create(level: int = 1, monthly_price: int = 300, daily_bonus: int = 0, **fields: Any) -> dict[str, Any]:
        body = {
            "level": level,
            "name": f"OG {level} {uuid.uuid4().hex[:6]}",
            "monthly_price": monthly_price,
            "daily_bonus": daily_bonus,
            **fields,
        }
        r = await client.post("/api/v1/admin/og/tiers", json=body, headers=admin.headers)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    return create


def key_headers(user: Any, key: str | None = None) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key or uuid.uuid4().hex}
