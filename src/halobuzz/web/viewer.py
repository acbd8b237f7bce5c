"""Viewer pages: the live listing, a stream (player, chat, gifts, follow), past broadcasts,
profiles, and reports."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from halobuzz.web.pages import Page, items, next_cursor, page_route, safe_next, text, uid

router = APIRouter(include_in_schema=False)

SORTS = ("viewers", "recent")
REPORT_TARGETS = ("user", "stream", "message")
REPORT_REASONS = ("spam", "harassment", "hate", "sexual", "violence", "self_harm", "scam", "impersonation", "other")


@router.get("/", response_class=HTMLResponse)
@page_route
async def home(request: Request) -> Response:
    page = await Page.open(request)
    q = request.query_params
    filters = {
        "q": (q.get("q") or "").strip(),
        "category": q.get("category") or "",
        "language": q.get("language") or "",
        "sort": q.get("sort") if q.get("sort") in SORTS else "viewers",
    }
    # Festivals running now: those of the user's country (and the everywhere ones), else all.
    country = str((page.me or {}).get("country") or "")
    live, cats, festivals = await asyncio.gather(
        page.api.public("/streams/live", cursor=q.get("cursor"), limit=24, **filters),
        page.api.public("/categories"),
        page.api.public("/festivals", region=country if len(country) == 2 else None),
    )
    more = None
    if next_cursor(live):
        more = "/?" + urlencode({**{k: v for k, v in filters.items() if v}, "cursor": next_cursor(live)})
    return page.render(
        "home.html",
        status=200 if live.ok else live.status,
        streams=items(live),
        more=more,
        categories=items(cats),
        festivals=items(festivals),
        filters=filters,
        error=None if live.ok else live.error,
    )


async def _stream_view(page: Page, stream_id: str, *, error: str | None = None, status: int = 200) -> Response:
    stream = page.must(await page.api.public(f"/streams/{stream_id}"))
    owner = stream.get("owner") or {}
    calls = [
        page.api.public("/gifts"),
        page.api.public(f"/streams/{stream_id}/chat/modes"),
        page.api.public(f"/streams/{stream_id}/chat", limit=50),
        page.api.public(f"/streams/{stream_id}/recordings"),
        page.api.get(f"/users/{owner.get('id')}"),  # as the viewer: whether they follow the owner
        page.api.public(f"/streams/{stream_id}/chat/moderators"),
        page.api.public(f"/streams/{stream_id}/throne"),
    ]
    if page.me is not None:
        calls.append(page.api.get("/wallet"))
    gifts, modes, history, recordings, profile, moderators, throne, *wallet = await asyncio.gather(*calls)
    me_id = (page.me or {}).get("id")
    can_moderate = bool(me_id) and (
        me_id == owner.get("id")
        or page.has_role("admin", "moderator")
        or any((m.get("user") or {}).get("id") == me_id for m in items(moderators))
    )
    return page.render(
        "stream.html",
        status=status,
        stream=stream,
        owner=owner,
        profile=profile.data if profile.ok else {},
        gifts=items(gifts),
        modes=modes.data if modes.ok else {},
        messages=items(history),
        recordings=items(recordings),
        throne=throne.data if throne.ok else None,
        balance=(wallet[0].data or {}).get("balance") if wallet and wallet[0].ok else None,
        can_moderate=can_moderate,
        error=error,
    )


@router.get("/streams/{stream_id}", response_class=HTMLResponse)
@page_route
async def stream_page(request: Request, stream_id: str) -> Response:
    page = await Page.open(request)
    return await _stream_view(page, page.id_of(stream_id))


@router.get("/streams/{stream_id}/playback.json")
@page_route
async def playback(request: Request, stream_id: str) -> Response:
    """For the player: the signed HLS URL once the stream's master playlist exists, else null
    (the page asks again later; a stream that is not live yet is not an error here)."""
    page = await Page.open(request)
    sid = uid(stream_id)
    if sid is None:
        return page.json({"error": {"code": "stream_not_found", "message": page.t("error.not_found")}}, 404)
    result = await page.api.get(f"/streams/{sid}/playback")
    if not result.ok:
        if result.code == "not_live":
            return page.json({"live": False, "url": None})
        return page.json(result.data, result.status)
    url = str(result.data.get("url") or "")
    ready = url.startswith("/api/v1/") and await _playlists_ready(page, url)
    return page.json({"live": True, "url": url if ready else None, "expires_at": result.data.get("expires_at")})


async def _playlists_ready(page: Page, master_url: str) -> bool:
    """The master playlist and every variant it names exist (the transcoder writes the master
    first and each variant after its first segment; a player started earlier sees 404s)."""
    master = await page.api.call("GET", master_url, raw_path=True)
    if not master.ok or not isinstance(master.data, str):
        return False
    base = master_url.rsplit("/", 1)[0]
    variants = [line.strip() for line in master.data.splitlines() if line.strip() and not line.startswith("#")]
    if not variants:
        return False
    if any(v.startswith(("http:", "https:", "/")) for v in variants):
        return True  # served from elsewhere: the master is all this server can check
    found = await asyncio.gather(*(page.api.call("GET", f"{base}/{v}", raw_path=True) for v in variants))
    return all(r.ok for r in found)


@router.get("/streams/{stream_id}/recordings/{recording_id}", response_class=HTMLResponse)
@page_route
async def recording_page(request: Request, stream_id: str, recording_id: str) -> Response:
    page = await Page.open(request)
    sid = page.id_of(stream_id)
    stream = page.must(await page.api.get(f"/streams/{sid}"))
    listing = await page.api.get(f"/streams/{sid}/recordings")
    page.must(listing)
    recordings = items(listing)
    found = next((r for r in recordings if r.get("id") == uid(recording_id)), None)
    if found is None:
        return page.render("error.html", status=404, message=page.t("vod.not_found"))
    return page.render("vod.html", stream=stream, recording=found, recordings=recordings)


@router.post("/streams/{stream_id}/gift")
@page_route
async def send_gift(request: Request, stream_id: str) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    sid = page.id_of(stream_id)
    result = await page.api.call(
        "POST",
        f"/streams/{sid}/gifts",
        json={"gift_id": text(form, "gift_id"), "quantity": 1},
        headers={"idempotency-key": text(form, "idempotency_key") or str(uuid.uuid4())},
    )
    if not result.ok:
        return await _stream_view(page, sid, error=result.error, status=result.status)
    return page.redirect(f"/streams/{sid}?notice=gift_sent")


# --- people ----------------------------------------------------------------------------------


@router.get("/users/{username}", response_class=HTMLResponse)
@page_route
async def profile_page(request: Request, username: str) -> Response:
    page = await Page.open(request)
    profile = page.must(await page.api.get(f"/users/{username}"))
    cursor = request.query_params.get("vods")
    streams, vods = await asyncio.gather(
        page.api.get("/streams", owner=str(profile["id"]), limit=20),
        page.api.public(f"/users/{profile['id']}/recordings", limit=12, cursor=cursor),
    )
    more = next_cursor(vods)
    return page.render(
        "profile.html",
        profile=profile,
        streams=items(streams),
        vods=items(vods),
        vods_more=f"/users/{profile['username']}?" + urlencode({"vods": more}) + "#vods-h" if more else None,
    )


@router.post("/users/{username}/recordings/{recording_id}/delete")
@page_route
async def delete_channel_recording(request: Request, username: str, recording_id: str) -> Response:
    """The channel's owner (or an admin) deletes one of its recordings."""
    page = await Page.open(request)
    await page.signed_form()
    rid = page.id_of(recording_id)
    result = await page.api.call("DELETE", f"/recordings/{rid}")
    if not result.ok:
        raise page.fail(result)
    return page.redirect(f"/users/{username}?notice=recording_deleted#vods-h")


async def _relation(request: Request, username: str, kind: str) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    undo = text(form, "action") in ("unfollow", "unblock")
    result = await page.api.call("DELETE" if undo else "POST", f"/users/{username}/{kind}")
    if not result.ok:
        raise page.fail(result)
    return page.redirect(safe_next(form.get("next"), f"/users/{username}"))


@router.post("/users/{username}/follow")
@page_route
async def follow(request: Request, username: str) -> Response:
    return await _relation(request, username, "follow")


@router.post("/users/{username}/block")
@page_route
async def block(request: Request, username: str) -> Response:
    return await _relation(request, username, "block")


# --- reports ---------------------------------------------------------------------------------


def _report_form(page: Page, values: dict[str, Any], *, error: str | None = None, status: int = 200) -> Response:
    return page.render(
        "report.html", status=status, values=values, reasons=REPORT_REASONS, targets=REPORT_TARGETS, error=error
    )


@router.get("/report", response_class=HTMLResponse)
@page_route
async def report_form(request: Request) -> Response:
    page = await Page.open(request)
    page.need_user()
    q = request.query_params
    values = {
        "target_type": q.get("target_type") if q.get("target_type") in REPORT_TARGETS else "user",
        "target_id": q.get("target_id") or "",
        "label": (q.get("label") or "")[:140],
        "next": safe_next(q.get("next")),
    }
    return _report_form(page, values)


@router.post("/report")
@page_route
async def report_submit(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    values = {k: text(form, k) for k in ("target_type", "target_id", "reason", "details", "label")}
    values["next"] = safe_next(form.get("next"))
    body = {k: values[k] for k in ("target_type", "target_id", "reason")}
    if values["details"]:
        body["details"] = values["details"]
    result = await page.api.post("/reports", body)
    if not result.ok:
        return _report_form(page, values, error=result.error, status=result.status)
    back = values["next"]
    return page.redirect(back + ("&" if "?" in back else "?") + "notice=reported")
