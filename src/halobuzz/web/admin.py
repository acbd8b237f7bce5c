"""The admin panel (admins and moderators; admins need two-factor authentication on).

Moderators see users (suspend, reinstate), the moderation queue and appeals; admins see
everything: roles and bans, payments and the ledger reconciliation, payouts, flagged
transactions, the catalog, categories, webhooks, jobs and dead letters, the audit log, and
system health with small charts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from halobuzz.core.clock import utcnow
from halobuzz.web import charts
from halobuzz.web.client import ApiResult
from halobuzz.web.pages import Page, items, listed, next_cursor, number, page_route, text, uid

router = APIRouter(prefix="/admin", include_in_schema=False)

ROLES = ("user", "creator", "moderator", "admin")
STATUSES = ("active", "suspended", "banned")
DECISIONS = ("dismiss", "warn", "remove_content", "suspend", "ban")
RARITIES = ("common", "rare", "epic", "legendary")
SUSPEND_HOURS = (1, 24, 72, 168, 720)
REPORT_DAYS = 14

View = Callable[..., Awaitable[Response]]


async def _staff(request: Request, *, admin_only: bool = False) -> Page:
    page = await Page.open(request)
    page.need_staff(admin_only=admin_only)
    return page


async def _posted(request: Request, *, admin_only: bool = False) -> tuple[Page, dict[str, Any]]:
    page = await Page.open(request)
    form = await page.form()
    page.need_staff(admin_only=admin_only)
    return page, form


async def _finish(
    page: Page, result: ApiResult, view: View, back: str, notice: str = "done", **view_args: Any
) -> Response:
    """After an action: back to the section with a notice, or the section again with the API's error."""
    if not result.ok:
        return await view(page, error=result.error, status=result.status, **view_args)
    return page.redirect(back + ("&" if "?" in back else "?") + f"notice={notice}")


def _query(page: Page, *names: str) -> dict[str, str]:
    q = page.request.query_params
    return {n: q.get(n, "").strip() for n in names}


def _more(page: Page, result: ApiResult, **params: str) -> str | None:
    cursor = next_cursor(result)
    if not cursor:
        return None
    return page.request.url.path + "?" + urlencode({**{k: v for k, v in params.items() if v}, "cursor": cursor})


# --- overview and system health --------------------------------------------------------------


async def _daily_reports(page: Page) -> list[dict[str, Any]]:
    tz = ZoneInfo(page.runtime.settings.jobs.timezone)
    today = utcnow().astimezone(tz).date()
    days = [today - timedelta(days=n) for n in range(REPORT_DAYS, 0, -1)]
    found = await asyncio.gather(*(page.api.get("/admin/reports/daily", date=d.isoformat()) for d in days))
    return [
        {"date": d.isoformat(), **((r.data or {}).get("data") or {} if r.ok else {})}
        for d, r in zip(days, found, strict=True)
    ]


async def _metrics(page: Page) -> list[charts.Sample]:
    result = await page.api.call("GET", "/metrics", raw_path=True)
    return charts.parse_metrics(result.data) if result.ok and isinstance(result.data, str) else []


@router.get("", response_class=HTMLResponse)
@page_route
async def overview(request: Request) -> Response:
    page = await _staff(request)
    if not page.has_role("admin"):
        return page.redirect("/admin/moderation")
    ready, samples, jobs = await asyncio.gather(
        page.api.call("GET", "/readyz", raw_path=True), _metrics(page), page.api.get("/admin/jobs")
    )
    reports = await _daily_reports(page)
    http_routes = [
        (route, value)
        for route, value in charts.by_label(samples, "halobuzz_http_requests_total", "route")
        if route and not route.startswith("/static")
    ][:8]
    return page.render(
        "admin_overview.html",
        ready=ready.data if isinstance(ready.data, dict) else {"status": "unknown", "checks": {}},
        ready_ok=ready.ok,
        status_classes=charts.status_classes(samples),
        latency=charts.latency_buckets(samples),
        routes=http_routes,
        chat=charts.by_label(samples, "halobuzz_chat_messages_total", "outcome"),
        events=charts.by_label(samples, "halobuzz_business_events_total", "event")[:10],
        gauges={
            "connections": charts.total(samples, "halobuzz_realtime_connections"),
            "db_in_use": charts.total(samples, "halobuzz_db_pool_checked_out"),
            "db_size": charts.total(samples, "halobuzz_db_pool_size"),
        },
        reports=reports,
        jobs=items(jobs),
    )


@router.get("/health/live.json")
@page_route
async def live_numbers(request: Request) -> Response:
    """Counters for the overview's live sparkline (the script turns them into rates)."""
    page = await Page.open(request)
    if page.me is None or not page.has_role("admin") or not page.user.get("two_factor_enabled"):
        return page.json({"error": {"code": "forbidden", "message": page.t("error.forbidden")}}, 403)
    samples = await _metrics(page)
    return page.json(
        {
            "at": time.time(),
            "requests": charts.total(samples, "halobuzz_http_requests_total"),
            "errors": sum(v for k, v in charts.status_classes(samples) if k == "5xx"),
            "chat_messages": charts.total(samples, "halobuzz_chat_messages_total"),
            "connections": charts.total(samples, "halobuzz_realtime_connections"),
        }
    )


# --- users -----------------------------------------------------------------------------------------


async def _users_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    f = _query(page, "q", "role", "status")
    params = {k: v for k, v in f.items() if v}
    result = await page.api.get("/admin/users", limit=50, cursor=page.request.query_params.get("cursor"), **params)
    return page.render(
        "admin_users.html",
        status=status if result.ok else result.status,
        users=items(result),
        more=_more(page, result, **f),
        filters=f,
        roles=ROLES,
        statuses=STATUSES,
        error=error or (None if result.ok else result.error),
    )


@router.get("/users", response_class=HTMLResponse)
@page_route
async def users(request: Request) -> Response:
    return await _users_view(await _staff(request))


async def _user_view(page: Page, user_id: str, *, error: str | None = None, status: int = 200) -> Response:
    calls = [page.api.get(f"/admin/users/{user_id}")]
    if page.has_role("admin"):
        calls += [
            page.api.get("/admin/payments", user_id=user_id, limit=10),
            page.api.get("/admin/audit-log", target_id=user_id, limit=20),
        ]
    found, *extra = await asyncio.gather(*calls)
    user = page.must(found)
    return page.render(
        "admin_user.html",
        status=status,
        user=user,
        payments=items(extra[0]) if extra else [],
        audit=items(extra[1]) if extra else [],
        roles=ROLES,
        suspend_hours=SUSPEND_HOURS,
        error=error,
    )


@router.get("/users/{user_id}", response_class=HTMLResponse)
@page_route
async def user(request: Request, user_id: str) -> Response:
    page = await _staff(request)
    found = page.id_of(user_id)
    return await _user_view(page, found)


@router.post("/users/{user_id}/{action}")
@page_route
async def user_action(request: Request, user_id: str, action: str) -> Response:
    page, form = await _posted(request)
    target = page.id_of(user_id)
    reason = text(form, "reason")
    base = f"/admin/users/{target}"
    if action == "ban":
        result = await page.api.post(f"{base}/ban", {"reason": reason})
    elif action == "suspend":
        hours = number(form, "hours")
        if not isinstance(hours, int) or hours < 1:
            return await _user_view(page, target, error=page.t("admin.pick_duration"), status=422)
        until = (utcnow() + timedelta(hours=hours)).isoformat()
        result = await page.api.post(f"{base}/suspend", {"reason": reason, "until": until})
    elif action == "reinstate":
        result = await page.api.post(f"{base}/reinstate", {"reason": reason} if reason else None)
    elif action == "roles":
        result = await page.api.call("PUT", f"{base}/roles", json={"roles": ["user", *listed(form, "roles")]})
    elif action == "creator":
        body: dict[str, Any] = {"approve": text(form, "approve") == "yes"}
        if reason:
            body["reason"] = reason
        result = await page.api.post(f"{base}/creator", body)
    else:
        raise page.not_found()
    back = text(form, "back")
    if not result.ok:
        return await _user_view(page, target, error=result.error, status=result.status)
    return page.redirect(
        (back if back.startswith("/admin/users") else base) + ("&" if "?" in back else "?") + "notice=done"
    )


# --- moderation ------------------------------------------------------------------------------------


async def _moderation_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    queue, appeals, log = await asyncio.gather(
        page.api.get("/moderation/queue"), page.api.get("/moderation/appeals"), page.api.get("/moderation/log")
    )
    return page.render(
        "admin_moderation.html",
        status=status if queue.ok else queue.status,
        queue=items(queue),
        appeals=items(appeals),
        log=items(log)[:30],
        error=error or (None if queue.ok else queue.error),
    )


@router.get("/moderation", response_class=HTMLResponse)
@page_route
async def moderation(request: Request) -> Response:
    return await _moderation_view(await _staff(request))


async def _names(page: Page, ids: set[str]) -> dict[str, str]:
    """Usernames of user ids (for the case context, which names users by id)."""
    wanted = sorted(i for i in ids if i)
    found = await asyncio.gather(*(page.api.get(f"/users/{i}") for i in wanted))
    return {i: str(r.data.get("username")) for i, r in zip(wanted, found, strict=True) if r.ok}


async def _case_view(page: Page, case_id: str, *, error: str | None = None, status: int = 200) -> Response:
    context = page.must(await page.api.get(f"/moderation/cases/{case_id}"))
    case = context.get("case") or {}
    ids = {case.get("subject_user_id") or "", case.get("claimed_by_id") or ""}
    ids |= {r.get("reporter_id") or "" for r in context.get("reports") or []}
    ids |= {m.get("user_id") or "" for m in context.get("messages") or []}
    ids |= {h.get("moderator_id") or "" for h in context.get("history") or []}
    names = await _names(page, ids)
    stream = None
    if case.get("target_type") == "stream":
        found = await page.api.get(f"/streams/{case.get('target_id')}")
        stream = found.data if found.ok else None
    decisions = [
        d
        for d in DECISIONS
        if (d != "ban" or page.has_role("admin")) and (d != "remove_content" or case.get("target_type") == "message")
    ]
    return page.render(
        "admin_case.html",
        status=status,
        context=context,
        case=case,
        names=names,
        stream=stream,
        decisions=decisions,
        error=error,
    )


@router.get("/moderation/cases/{case_id}", response_class=HTMLResponse)
@page_route
async def case(request: Request, case_id: str) -> Response:
    page = await _staff(request)
    found = page.id_of(case_id)
    return await _case_view(page, found)


@router.post("/moderation/cases/{case_id}/{action}")
@page_route
async def case_action(request: Request, case_id: str, action: str) -> Response:
    page, form = await _posted(request)
    found = page.id_of(case_id)
    base = f"/moderation/cases/{found}"
    if action == "claim":
        result = await page.api.post(f"{base}/claim")
        return await _finish(page, result, _case_view, f"/admin{base}", "claimed", case_id=found)
    if action == "note":
        result = await page.api.post(f"{base}/notes", {"note": text(form, "note")})
        return await _finish(page, result, _case_view, f"/admin{base}", "saved", case_id=found)
    if action != "decide":
        raise page.not_found()
    # Deciding claims the case first (the API requires the decider to hold the claim).
    claim = await page.api.post(f"{base}/claim")
    if not claim.ok:
        return await _case_view(page, found, error=claim.error, status=claim.status)
    body: dict[str, Any] = {"action": text(form, "decision"), "reason": text(form, "reason")}
    if body["action"] == "suspend":
        body["duration_days"] = number(form, "duration_days")
    result = await page.api.post(f"{base}/decision", body)
    return await _finish(page, result, _case_view, "/admin/moderation", "decided", case_id=found)


@router.post("/moderation/appeals/{appeal_id}")
@page_route
async def appeal_decide(request: Request, appeal_id: str) -> Response:
    page, form = await _posted(request)
    found = page.id_of(appeal_id)
    body = {"reverse": text(form, "outcome") == "reverse", "reason": text(form, "reason")}
    result = await page.api.post(f"/moderation/appeals/{found}/decision", body)
    return await _finish(page, result, _moderation_view, "/admin/moderation", "decided")


# --- payments, reconciliation, payouts, flags ----------------------------------------------------


async def _payments_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    f = _query(page, "status", "provider", "user_id")
    params = {k: v for k, v in f.items() if v}
    result, recon = await asyncio.gather(
        page.api.get("/admin/payments", limit=50, cursor=page.request.query_params.get("cursor"), **params),
        page.api.get("/admin/ledger/reconciliation"),
    )
    return page.render(
        "admin_payments.html",
        status=status if result.ok else result.status,
        payments=items(result),
        more=_more(page, result, **f),
        filters=f,
        recon=recon.data if recon.ok else None,
        error=error or (None if result.ok else result.error),
    )


@router.get("/payments", response_class=HTMLResponse)
@page_route
async def payments(request: Request) -> Response:
    return await _payments_view(await _staff(request, admin_only=True))


@router.post("/payments/{intent_id}/refund")
@page_route
async def refund(request: Request, intent_id: str) -> Response:
    page, form = await _posted(request, admin_only=True)
    found = page.id_of(intent_id)
    result = await page.api.post(f"/admin/payments/{found}/refund", {"reason": text(form, "reason")})
    return await _finish(page, result, _payments_view, "/admin/payments", "refunded")


@router.post("/payments/reconcile")
@page_route
async def reconcile_now(request: Request) -> Response:
    page, _ = await _posted(request, admin_only=True)
    result = await page.api.post("/admin/payments/reconcile")
    return await _finish(page, result, _payments_view, "/admin/payments", "reconciled")


@router.get("/reconciliation", response_class=HTMLResponse)
@page_route
async def reconciliation(request: Request) -> Response:
    page = await _staff(request, admin_only=True)
    report = page.must(await page.api.get("/admin/ledger/reconciliation"))
    return page.render("admin_reconciliation.html", recon=report)


async def _payouts_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    f = _query(page, "status")
    result = await page.api.get(
        "/admin/payouts", limit=50, cursor=page.request.query_params.get("cursor"), **{k: v for k, v in f.items() if v}
    )
    names = await _names(page, {str(p.get("user_id")) for p in items(result)})
    return page.render(
        "admin_payouts.html",
        status=status if result.ok else result.status,
        payouts=items(result),
        names=names,
        more=_more(page, result, **f),
        filters=f,
        error=error or (None if result.ok else result.error),
    )


@router.get("/payouts", response_class=HTMLResponse)
@page_route
async def payouts(request: Request) -> Response:
    return await _payouts_view(await _staff(request, admin_only=True))


@router.post("/payouts/{payout_id}/{action}")
@page_route
async def payout_action(request: Request, payout_id: str, action: str) -> Response:
    page, form = await _posted(request, admin_only=True)
    found = page.id_of(payout_id)
    if action not in ("approve", "reject"):
        raise page.not_found()
    body = {"reason": text(form, "reason")} if action == "reject" else None
    result = await page.api.post(f"/admin/payouts/{found}/{action}", body)
    return await _finish(page, result, _payouts_view, "/admin/payouts", "done")


async def _flags_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    f = _query(page, "status")
    result = await page.api.get(
        "/admin/economy/flags",
        limit=50,
        cursor=page.request.query_params.get("cursor"),
        **{k: v for k, v in f.items() if v},
    )
    names = await _names(page, {str(x.get("user_id") or "") for x in items(result)})
    return page.render(
        "admin_flags.html",
        status=status if result.ok else result.status,
        flags=items(result),
        names=names,
        more=_more(page, result, **f),
        filters=f,
        error=error or (None if result.ok else result.error),
    )


@router.get("/flags", response_class=HTMLResponse)
@page_route
async def flags(request: Request) -> Response:
    return await _flags_view(await _staff(request, admin_only=True))


@router.post("/flags/{flag_id}/resolve")
@page_route
async def resolve_flag(request: Request, flag_id: str) -> Response:
    page, form = await _posted(request, admin_only=True)
    found = page.id_of(flag_id)
    result = await page.api.post(f"/admin/economy/flags/{found}/resolve", {"resolution": text(form, "resolution")})
    return await _finish(page, result, _flags_view, "/admin/flags", "done")


# --- catalog and categories -----------------------------------------------------------------------


async def _catalog_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    packages, gifts, festivals = await asyncio.gather(
        page.api.get("/admin/coin-packages"), page.api.get("/admin/gifts"), page.api.get("/admin/festivals")
    )
    return page.render(
        "admin_catalog.html",
        status=status,
        packages=items(packages),
        gifts=items(gifts),
        festivals=items(festivals),
        rarities=RARITIES,
        error=error,
    )


@router.get("/catalog", response_class=HTMLResponse)
@page_route
async def catalog(request: Request) -> Response:
    return await _catalog_view(await _staff(request, admin_only=True))


def _prices(form: dict[str, Any]) -> dict[str, int | str]:
    """``NPR=1000, USD=99`` (minor units) as a price map; values the API then checks."""
    out: dict[str, int | str] = {}
    for part in text(form, "prices").split(","):
        currency, _, amount = part.partition("=")
        if currency.strip():
            raw = amount.strip()
            out[currency.strip().upper()] = int(raw) if raw.isdigit() else raw
    return out


def _package_body(form: dict[str, Any], *, editing: bool) -> dict[str, Any]:
    body = {
        "name": text(form, "name"),
        "coins": number(form, "coins"),
        "bonus_coins": number(form, "bonus_coins") or 0,
        "prices": _prices(form),
        "position": number(form, "position") or 0,
    }
    if editing:
        body["is_active"] = bool(form.get("is_active"))
    return body


def _gift_body(form: dict[str, Any], *, editing: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": text(form, "name"),
        "coin_price": number(form, "coin_price"),
        "animation_url": text(form, "animation_url"),
        "rarity": text(form, "rarity") or "common",
        "position": number(form, "position") or 0,
    }
    festival = text(form, "festival_id")
    if editing or festival:
        # A festival gift is offered only while its festival runs; none makes it an ordinary gift.
        body["festival_id"] = festival or None
    if editing:
        body["is_active"] = bool(form.get("is_active"))
    return body


@router.post("/catalog/{kind}")
@page_route
async def catalog_create(request: Request, kind: str) -> Response:
    page, form = await _posted(request, admin_only=True)
    if kind == "packages":
        result = await page.api.post("/admin/coin-packages", _package_body(form, editing=False))
    elif kind == "gifts":
        result = await page.api.post("/admin/gifts", _gift_body(form, editing=False))
    else:
        raise page.not_found()
    return await _finish(page, result, _catalog_view, "/admin/catalog", "saved")


@router.post("/catalog/{kind}/{item_id}")
@page_route
async def catalog_edit(request: Request, kind: str, item_id: str) -> Response:
    page, form = await _posted(request, admin_only=True)
    found = page.id_of(item_id)
    if kind not in ("packages", "gifts"):
        raise page.not_found()
    if kind == "packages":
        result = await page.api.call("PATCH", f"/admin/coin-packages/{found}", json=_package_body(form, editing=True))
    else:
        result = await page.api.call("PATCH", f"/admin/gifts/{found}", json=_gift_body(form, editing=True))
    return await _finish(page, result, _catalog_view, "/admin/catalog", "saved")


async def _categories_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    result = await page.api.get("/categories")
    return page.render("admin_categories.html", status=status, categories=items(result), error=error)


@router.get("/categories", response_class=HTMLResponse)
@page_route
async def categories(request: Request) -> Response:
    return await _categories_view(await _staff(request, admin_only=True))


@router.post("/categories")
@page_route
async def category_create(request: Request) -> Response:
    page, form = await _posted(request, admin_only=True)
    if text(form, "action") == "activate":
        # Deactivated categories are not listed: they come back by slug.
        result = await page.api.call("PATCH", f"/categories/{text(form, 'slug') or '-'}", json={"is_active": True})
        return await _finish(page, result, _categories_view, "/admin/categories", "saved")
    body = {
        "slug": text(form, "slug"),
        "name": text(form, "name"),
        "description": text(form, "description"),
        "position": number(form, "position") or 0,
    }
    result = await page.api.post("/categories", body)
    return await _finish(page, result, _categories_view, "/admin/categories", "saved")


@router.post("/categories/{slug}")
@page_route
async def category_edit(request: Request, slug: str) -> Response:
    page, form = await _posted(request, admin_only=True)
    if text(form, "action") == "deactivate":
        result = await page.api.call("DELETE", f"/categories/{slug}")
    else:
        body = {
            "name": text(form, "name"),
            "description": text(form, "description"),
            "position": number(form, "position") or 0,
        }
        result = await page.api.call("PATCH", f"/categories/{slug}", json=body)
    return await _finish(page, result, _categories_view, "/admin/categories", "saved")


# --- webhooks, jobs, audit ----------------------------------------------------------------------


async def _webhooks_view(
    page: Page, *, error: str | None = None, status: int = 200, values: dict[str, Any] | None = None
) -> Response:
    endpoints = await page.api.get("/admin/webhooks")
    chosen = uid(page.request.query_params.get("endpoint", ""))
    deliveries = await page.api.get(f"/admin/webhooks/{chosen}/deliveries", limit=50) if chosen else None
    return page.render(
        "admin_webhooks.html",
        status=status,
        endpoints=items(endpoints),
        chosen=chosen,
        deliveries=items(deliveries) if deliveries is not None else [],
        values=values or {},
        error=error,
    )


@router.get("/webhooks", response_class=HTMLResponse)
@page_route
async def webhooks(request: Request) -> Response:
    return await _webhooks_view(await _staff(request, admin_only=True))


@router.post("/webhooks")
@page_route
async def webhook_create(request: Request) -> Response:
    page, form = await _posted(request, admin_only=True)
    kinds = [k.strip() for k in text(form, "event_types").split(",") if k.strip()]
    body = {
        "url": text(form, "url"),
        "secret": text(form, "secret"),
        "event_types": kinds,
        "description": text(form, "description"),
    }
    result = await page.api.post("/admin/webhooks", body)
    values = {k: text(form, k) for k in ("url", "event_types", "description")}
    return await _finish(page, result, _webhooks_view, "/admin/webhooks", "saved", values=values)


@router.post("/webhooks/{webhook_id}/delete")
@page_route
async def webhook_delete(request: Request, webhook_id: str) -> Response:
    page, _ = await _posted(request, admin_only=True)
    found = page.id_of(webhook_id)
    return await _finish(
        page, await page.api.call("DELETE", f"/admin/webhooks/{found}"), _webhooks_view, "/admin/webhooks", "deleted"
    )


async def _jobs_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    jobs, dead = await asyncio.gather(
        page.api.get("/admin/jobs"),
        page.api.get("/admin/jobs/dead-letter", limit=50, cursor=page.request.query_params.get("cursor")),
    )
    return page.render(
        "admin_jobs.html", status=status, jobs=items(jobs), dead=items(dead), more=_more(page, dead), error=error
    )


@router.get("/jobs", response_class=HTMLResponse)
@page_route
async def jobs(request: Request) -> Response:
    return await _jobs_view(await _staff(request, admin_only=True))


@router.post("/jobs/dead-letter/{dead_id}/retry")
@page_route
async def retry_dead(request: Request, dead_id: str) -> Response:
    page, _ = await _posted(request, admin_only=True)
    found = page.id_of(dead_id)
    return await _finish(
        page, await page.api.post(f"/admin/jobs/dead-letter/{found}/retry"), _jobs_view, "/admin/jobs", "retried"
    )


@router.get("/audit", response_class=HTMLResponse)
@page_route
async def audit(request: Request) -> Response:
    page = await _staff(request, admin_only=True)
    f = _query(page, "action", "actor_id", "target_id")
    result = await page.api.get(
        "/admin/audit-log", limit=50, cursor=request.query_params.get("cursor"), **{k: v for k, v in f.items() if v}
    )
    names = await _names(page, {str(a.get("actor_id") or "") for a in items(result)})
    return page.render(
        "admin_audit.html",
        status=200 if result.ok else result.status,
        entries=items(result),
        names=names,
        more=_more(page, result, **f),
        filters=f,
        error=None if result.ok else result.error,
    )
