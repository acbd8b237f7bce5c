"""Economy pages for viewers: OG tiers and the user's membership (subscribe, upgrade, auto-renew,
cancel) and claiming the daily bonus on the wallet page (docs/economy.md)."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from halobuzz.web import wallet
from halobuzz.web.pages import Page, items, number, page_route, text

router = APIRouter(include_in_schema=False)


async def _og_view(page: Page, *, error: str | None = None, code: str = "", status: int = 200) -> Response:
    calls = [page.api.public("/og/tiers")]
    if page.me is not None:
        calls += [page.api.get("/og/subscription"), page.api.get("/wallet")]
    tiers, *mine = await asyncio.gather(*calls)
    membership = mine[0].data if mine and mine[0].ok else None
    balance = (mine[1].data or {}).get("balance") if mine and mine[1].ok else None
    current = (membership or {}).get("tier") or {}
    held = int(current.get("level") or 0) if membership and membership.get("active") else 0
    return page.render(
        "og.html",
        status=status,
        tiers=items(tiers),
        membership=membership,
        held=held,
        balance=balance,
        # A fresh key per form render: a resubmitted form replays instead of charging twice.
        idempotency_key=str(uuid.uuid4()),
        error=error,
        error_code=code,
    )


@router.get("/og", response_class=HTMLResponse)
@page_route
async def og_page(request: Request) -> Response:
    return await _og_view(await Page.open(request))


@router.post("/og/subscribe")
@page_route
async def subscribe(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    result = await page.api.call(
        "POST",
        "/og/subscription",
        json={"level": number(form, "level")},
        headers={"idempotency-key": text(form, "idempotency_key") or str(uuid.uuid4())},
    )
    if not result.ok:
        return await _og_view(page, error=result.error, code=result.code, status=result.status)
    return page.redirect("/og?notice=og_subscribed")


@router.post("/og/auto-renew")
@page_route
async def auto_renew(request: Request) -> Response:
    """Auto-renew off (cancel: the term runs to its end) or back on."""
    page = await Page.open(request)
    form, _ = await page.signed_form()
    if text(form, "auto_renew") == "on":
        result = await page.api.call("PATCH", "/og/subscription", json={"auto_renew": True})
        notice = "og_renewing"
    else:
        result = await page.api.post("/og/subscription/cancel")
        notice = "og_cancelled"
    if not result.ok:
        return await _og_view(page, error=result.error, code=result.code, status=result.status)
    return page.redirect(f"/og?notice={notice}")


@router.post("/wallet/bonus")
@page_route
async def claim_bonus(request: Request) -> Response:
    page = await Page.open(request)
    await page.signed_form()
    result = await page.api.post("/bonus/daily/claim")
    if not result.ok:
        return await wallet.wallet_view(page, error=result.error, status=result.status)
    return page.redirect("/wallet?notice=bonus_claimed")
