"""Notifications: the list (cursor pages, mark one or all read, delete), the preferences (per type
and channel, quiet hours, the email digest), this browser's web push subscription, and the
service worker that shows pushes (served from ``/sw.js`` so its scope is the whole site)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from halobuzz.notifications import catalog
from halobuzz.web import i18n
from halobuzz.web.client import ApiResult
from halobuzz.web.pages import STATIC_DIR, Page, items, next_cursor, page_route, text

router = APIRouter(include_in_schema=False)


def link_of(item: dict[str, Any]) -> str | None:
    """Where a notification leads."""
    data = item.get("data") or {}
    kind = item.get("type")
    if kind == catalog.STREAM_LIVE and data.get("stream_id"):
        return f"/streams/{data['stream_id']}"
    if kind == catalog.NEW_FOLLOWER and (data.get("follower") or {}).get("username"):
        return f"/users/{data['follower']['username']}"
    if kind == catalog.GIFT_RECEIVED and data.get("stream_id"):
        return f"/studio/streams/{data['stream_id']}"
    if kind == catalog.PAYMENT_COMPLETED:
        return "/wallet"
    if kind == catalog.MODERATION:
        return "/studio/kyc" if data.get("kind") == "kyc" else "/account/appeals"
    if kind == catalog.RAID_INCOMING and data.get("stream_id"):
        return f"/studio/streams/{data['stream_id']}"
    return None


def describe(page: Page, item: dict[str, Any]) -> str:
    """A notification as one translated sentence."""
    data = item.get("data") or {}
    kind = str(item.get("type") or "")
    user = ""
    for who in ("creator", "follower", "sender", "raider"):
        if isinstance(data.get(who), dict):
            user = str(data[who].get("username") or "")
    values: dict[str, object] = {
        "user": user,
        "title": data.get("title") or "",
        "gift": (data.get("gift") or {}).get("name", "") if isinstance(data.get("gift"), dict) else "",
        "count": data.get("quantity") or data.get("viewer_count") or data.get("coins") or 0,
        "tier": data.get("tier") or "",
        "reason": data.get("reason") or "",
    }
    if kind == catalog.MODERATION:
        action = str(data.get("action") or "")
        label = page.t(f"notif.action.{action}") if i18n.has_key(f"notif.action.{action}") else action
        if data.get("kind") == "appeal":
            outcome = "reversed" if data.get("outcome") == "reversed" else "upheld"
            return page.t(f"notif.appeal.{outcome}", action=label, reason=values["reason"])
        return page.t("notif.moderation", action=label, reason=values["reason"])
    return page.t(f"notif.{kind}", **values) if kind in catalog.TYPES else kind


async def _list_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    page.need_user()
    q = page.request.query_params
    unread_only = q.get("unread") == "1"
    result = await page.api.get(
        "/notifications", limit=20, cursor=q.get("cursor"), unread="true" if unread_only else None
    )
    if result.ok:
        page.unread = int(result.data.get("unread_count") or 0)
    found = [{**n, "text": describe(page, n), "link": link_of(n)} for n in items(result)]
    cursor = next_cursor(result)
    more = (
        "/notifications?" + urlencode({**({"unread": "1"} if unread_only else {}), "cursor": cursor})
        if cursor
        else None
    )
    return page.render(
        "notifications.html",
        status=status if result.ok else result.status,
        notifications=found,
        more=more,
        unread_only=unread_only,
        error=error or (None if result.ok else result.error),
    )


@router.get("/notifications", response_class=HTMLResponse)
@page_route
async def notifications(request: Request) -> Response:
    page = await Page.open(request)
    return await _list_view(page)


async def _back(page: Page, result: ApiResult, form: dict[str, Any], notice: str) -> Response:
    if not result.ok:
        return await _list_view(page, error=result.error, status=result.status)
    back = text(form, "next")
    if not back.startswith("/notifications"):
        back = "/notifications"
    return page.redirect(back + ("&" if "?" in back else "?") + f"notice={notice}")


@router.post("/notifications/read-all")
@page_route
async def read_all(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    return await _back(page, await page.api.post("/notifications/read", {"all": True}), form, "all_read")


@router.post("/notifications/{notification_id}/read")
@page_route
async def read_one(request: Request, notification_id: str) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    nid = page.id_of(notification_id)
    return await _back(page, await page.api.post(f"/notifications/{nid}/read"), form, "marked_read")


@router.post("/notifications/{notification_id}/delete")
@page_route
async def delete_one(request: Request, notification_id: str) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    nid = page.id_of(notification_id)
    return await _back(page, await page.api.call("DELETE", f"/notifications/{nid}"), form, "notification_deleted")


# --- preferences and web push ---------------------------------------------------------------------


async def _prefs_view(
    page: Page, *, error: str | None = None, status: int = 200, values: dict[str, str] | None = None
) -> Response:
    page.need_user()
    prefs, subs = await asyncio.gather(
        page.api.get("/notifications/preferences"), page.api.get("/notifications/push-subscriptions")
    )
    data = page.must(prefs)
    quiet = data.get("quiet_hours") or {}
    return page.render(
        "notification_prefs.html",
        status=status,
        prefs=data,
        types=catalog.TYPES,
        channels=catalog.CHANNELS,
        locked=catalog.LOCKED,
        subscriptions=items(subs),
        quiet=values or {"start": quiet.get("start", ""), "end": quiet.get("end", "")},
        error=error,
    )


@router.get("/notifications/preferences", response_class=HTMLResponse)
@page_route
async def preferences(request: Request) -> Response:
    page = await Page.open(request)
    return await _prefs_view(page)


@router.post("/notifications/preferences")
@page_route
async def save_preferences(request: Request) -> Response:
    """Every checkbox of the grid (a box left unticked is off), the quiet hours (both empty: none)
    and the digest, in one ``PATCH``."""
    page = await Page.open(request)
    form, _ = await page.signed_form()
    current = page.must(await page.api.get("/notifications/preferences"))
    offered = [c for c, on in (current.get("channels") or {}).items() if on]
    types = {t: {c: bool(form.get(f"{t}:{c}")) for c in offered if (t, c) not in catalog.LOCKED} for t in catalog.TYPES}
    start, end = text(form, "quiet_start"), text(form, "quiet_end")
    body: dict[str, Any] = {
        "types": types,
        "email_digest": bool(form.get("email_digest")),
        "quiet_hours": {"start": start, "end": end} if (start or end) else None,
    }
    result = await page.api.call("PATCH", "/notifications/preferences", json=body)
    if not result.ok:
        return await _prefs_view(page, error=result.error, status=result.status, values={"start": start, "end": end})
    return page.redirect("/notifications/preferences?notice=saved")


@router.post("/notifications/push/{subscription_id}/remove")
@page_route
async def remove_push(request: Request, subscription_id: str) -> Response:
    page = await Page.open(request)
    await page.signed_form()
    sid = page.id_of(subscription_id)
    result = await page.api.call("DELETE", f"/notifications/push-subscriptions/{sid}")
    if not result.ok:
        return await _prefs_view(page, error=result.error, status=result.status)
    return page.redirect("/notifications/preferences?notice=push_removed")


@router.get("/sw.js", include_in_schema=False)
async def service_worker() -> Response:
    """The service worker, from the site's root so that its scope is every page."""
    body = (STATIC_DIR / "js" / "sw.js").read_bytes()
    return Response(
        body,
        media_type="text/javascript",
        headers={"cache-control": "no-cache", "service-worker-allowed": "/", "x-content-type-options": "nosniff"},
    )
