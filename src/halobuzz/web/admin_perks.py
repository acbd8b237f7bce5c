"""Admin pages for the economy's extras (admins only): festivals (list, add, edit, turn on or off,
remove) and OG tiers (list, add, edit) over the admin API (docs/economy.md)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from halobuzz.economy.og import CHAT_PRIVILEGES
from halobuzz.web.admin import _finish, _posted, _staff
from halobuzz.web.pages import Page, env, items, listed, number, page_route, text

router = APIRouter(prefix="/admin", include_in_schema=False)

_LOCAL_MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


def utc_input(value: object) -> str:
    """An API time as the value of a ``datetime-local`` input, in UTC (``YYYY-MM-DDTHH:MM``)."""
    raw = str(value or "")
    return raw[:16] if len(raw) >= 16 else raw


env.filters["utc_input"] = utc_input


def _utc(form: dict[str, Any], name: str) -> str | None:
    """A ``datetime-local`` value read as UTC; other text goes to the API as typed (it explains)."""
    raw = text(form, name)
    if not raw:
        return None
    if _LOCAL_MINUTE.match(raw):
        return raw + (":00" if len(raw) == 16 else "") + "+00:00"
    return raw


def _multiplier(form: dict[str, Any]) -> float | str | None:
    raw = text(form, "bonus_multiplier")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        return raw


def _regions(form: dict[str, Any]) -> list[str]:
    return [r.upper() for r in re.split(r"[\s,]+", text(form, "regions")) if r]


# --- festivals ----------------------------------------------------------------------------------


async def _festivals_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    festivals = await page.api.get("/admin/festivals")
    if not festivals.ok and error is None:
        error, status = festivals.error, festivals.status
    return page.render("admin_festivals.html", status=status, festivals=items(festivals), error=error)


@router.get("/festivals", response_class=HTMLResponse)
@page_route
async def festivals(request: Request) -> Response:
    return await _festivals_view(await _staff(request, admin_only=True))


def _festival_body(form: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": text(form, "name"),
        "regions": _regions(form),
        "starts_at": _utc(form, "starts_at"),
        "ends_at": _utc(form, "ends_at"),
        "enabled": bool(form.get("enabled")),
    }
    multiplier = _multiplier(form)
    if multiplier is not None:
        body["bonus_multiplier"] = multiplier
    return body


@router.post("/festivals")
@page_route
async def festival_create(request: Request) -> Response:
    page, form = await _posted(request, admin_only=True)
    result = await page.api.post("/admin/festivals", _festival_body(form))
    return await _finish(page, result, _festivals_view, "/admin/festivals", "saved")


@router.post("/festivals/{festival_id}")
@page_route
async def festival_edit(request: Request, festival_id: str) -> Response:
    page, form = await _posted(request, admin_only=True)
    found = page.id_of(festival_id)
    body = {k: v for k, v in _festival_body(form).items() if v is not None}
    result = await page.api.call("PATCH", f"/admin/festivals/{found}", json=body)
    return await _finish(page, result, _festivals_view, "/admin/festivals", "saved")


@router.post("/festivals/{festival_id}/{action}")
@page_route
async def festival_action(request: Request, festival_id: str, action: str) -> Response:
    page, _ = await _posted(request, admin_only=True)
    found = page.id_of(festival_id)
    if action in ("enable", "disable"):
        result = await page.api.call("PATCH", f"/admin/festivals/{found}", json={"enabled": action == "enable"})
        notice = "saved"
    elif action == "delete":
        result = await page.api.call("DELETE", f"/admin/festivals/{found}")
        notice = "festival_deleted"
    else:
        raise page.not_found()
    return await _finish(page, result, _festivals_view, "/admin/festivals", notice)


# --- OG tiers -----------------------------------------------------------------------------------


async def _og_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    tiers = await page.api.get("/admin/og/tiers")
    if not tiers.ok and error is None:
        error, status = tiers.error, tiers.status
    return page.render("admin_og.html", status=status, tiers=items(tiers), privileges=CHAT_PRIVILEGES, error=error)


@router.get("/og", response_class=HTMLResponse)
@page_route
async def og_tiers(request: Request) -> Response:
    return await _og_view(await _staff(request, admin_only=True))


def _tier_body(form: dict[str, Any], *, editing: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "level": number(form, "level"),
        "name": text(form, "name"),
        "monthly_price": number(form, "monthly_price"),
        "daily_bonus": number(form, "daily_bonus") or 0,
        "badge": text(form, "badge"),
        "chat_privileges": listed(form, "chat_privileges"),
    }
    if editing:
        body["is_active"] = bool(form.get("is_active"))
    return body


@router.post("/og/tiers")
@page_route
async def tier_create(request: Request) -> Response:
    page, form = await _posted(request, admin_only=True)
    result = await page.api.post("/admin/og/tiers", _tier_body(form, editing=False))
    return await _finish(page, result, _og_view, "/admin/og", "saved")


@router.post("/og/tiers/{tier_id}")
@page_route
async def tier_edit(request: Request, tier_id: str) -> Response:
    page, form = await _posted(request, admin_only=True)
    found = page.id_of(tier_id)
    result = await page.api.call("PATCH", f"/admin/og/tiers/{found}", json=_tier_body(form, editing=True))
    return await _finish(page, result, _og_view, "/admin/og", "saved")
