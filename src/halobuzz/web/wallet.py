"""The wallet: balance, history, buying coins (the sandbox checkout in the embedded default; Stripe,
eSewa and Khalti where configured) and the pages payment providers send buyers back to."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from halobuzz.payments.service import enabled_providers
from halobuzz.web.pages import Page, items, next_cursor, page_route, text

router = APIRouter(include_in_schema=False)
PROVIDER_NAMES = {"sandbox": "Sandbox", "stripe": "Stripe", "esewa": "eSewa", "khalti": "Khalti"}


async def wallet_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    cursor = page.request.query_params.get("cursor")
    balance, history, packages, bonus = await asyncio.gather(
        page.api.get("/wallet"),
        page.api.get("/wallet/transactions", limit=25, cursor=cursor),
        page.api.get("/coin-packages"),
        page.api.get("/bonus/daily"),
    )
    if not history.ok and error is None:
        error, status = history.error, history.status
    offered = items(packages)
    currencies = sorted({c for p in offered for c in (p.get("prices") or {})})
    providers = [p for p in PROVIDER_NAMES if p in enabled_providers(page.runtime.settings)]
    return page.render(
        "wallet.html",
        status=status,
        wallet=balance.data if balance.ok else {},
        entries=items(history),
        more=next_cursor(history),
        packages=offered,
        currencies=currencies,
        providers=providers,
        provider_names=PROVIDER_NAMES,
        bonus=bonus.data if bonus.ok else None,
        error=error,
    )


@router.get("/wallet", response_class=HTMLResponse)
@page_route
async def wallet(request: Request) -> Response:
    page = await Page.open(request)
    page.need_user()
    return await wallet_view(page)


@router.post("/wallet/buy")
@page_route
async def buy(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    provider = text(form, "provider") or "sandbox"
    intent = await page.api.call(
        "POST",
        "/payments/intents",
        json={"package_id": text(form, "package_id"), "provider": provider, "currency": text(form, "currency")},
        headers={"idempotency-key": text(form, "idempotency_key") or str(uuid.uuid4())},
    )
    if not intent.ok:
        return await wallet_view(page, error=intent.error, status=intent.status)
    action = intent.data.get("next_action") or {}
    if provider == "sandbox":
        return page.redirect(f"/wallet/checkout/{intent.data['id']}")
    if action.get("type") == "form_post":
        # eSewa takes a form POST: the page's form-action allows its origin.
        page.form_action.append(str(action.get("url") or ""))
    return page.render(
        "checkout_continue.html",
        intent=intent.data,
        action=action,
        provider_name=PROVIDER_NAMES.get(provider, provider),
    )


async def _checkout(page: Page, intent_id: str) -> dict[str, object]:
    found = page.id_of(intent_id)
    return dict(page.must(await page.api.get(f"/payments/intents/{found}")))


@router.get("/wallet/checkout/{intent_id}", response_class=HTMLResponse)
@page_route
async def checkout(request: Request, intent_id: str) -> Response:
    """The sandbox checkout: stands in for a payment provider while no money can move."""
    page = await Page.open(request)
    page.need_user()
    intent = await _checkout(page, intent_id)
    if intent.get("status") == "succeeded":
        return page.redirect("/wallet?notice=bought")
    return page.render("checkout.html", intent=intent)


@router.post("/wallet/checkout/{intent_id}")
@page_route
async def checkout_pay(request: Request, intent_id: str) -> Response:
    page = await Page.open(request)
    await page.signed_form()
    intent = await _checkout(page, intent_id)
    paid = await page.api.post(f"/payments/sandbox/{intent['id']}/complete")
    if not paid.ok:
        return page.render("checkout.html", status=paid.status, intent=intent, error=paid.error)
    return page.redirect("/wallet?notice=bought")


# --- back from a provider -----------------------------------------------------------------------


def _result(page: Page, status: str, *, error: str | None = None, code: int = 200) -> Response:
    return page.render("payment_result.html", status=code, outcome=status, error=error)


@router.get("/wallet/return/esewa", response_class=HTMLResponse)
@page_route
async def esewa_return(request: Request) -> Response:
    """eSewa sends the buyer back with its signed ``data`` (success) or to the failure URL."""
    page = await Page.open(request)
    q = request.query_params
    if q.get("status") == "failed" or not q.get("data"):
        return _result(page, "failed")
    result = await page.api.get("/payments/webhooks/esewa", data=q.get("data"))
    if not result.ok:
        return _result(page, "failed", error=result.error, code=result.status)
    return _result(page, str(result.data.get("status") or "pending"))


@router.get("/wallet/return/khalti", response_class=HTMLResponse)
@page_route
async def khalti_return(request: Request) -> Response:
    """Khalti's return callback is unsigned: the API trusts only Khalti's lookup of ``pidx``."""
    page = await Page.open(request)
    pidx = request.query_params.get("pidx")
    if not pidx:
        return _result(page, "failed")
    result = await page.api.get("/payments/webhooks/khalti", pidx=pidx)
    if not result.ok:
        return _result(page, "failed", error=result.error, code=result.status)
    return _result(page, str(result.data.get("status") or "pending"))


@router.get("/wallet/return/stripe", response_class=HTMLResponse)
@page_route
async def stripe_return(request: Request) -> Response:
    """Stripe credits through its signed webhook; the page shows where the payment stands."""
    page = await Page.open(request)
    page.need_user()
    intent = await _checkout(page, request.query_params.get("payment_intent") or "")
    status = str(intent.get("status") or "pending")
    if status == "pending" and request.query_params.get("status") == "canceled":
        status = "canceled"
    return _result(page, status)
