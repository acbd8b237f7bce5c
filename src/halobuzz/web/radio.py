"""Radio pages (Awaz Pulse): the channel directory, a channel's page (player, now playing,
listeners, schedule, tracks) and the studio for channel owners (edit, delete, upload tracks,
order the playlist, schedule and remove shows).

Everything goes through the radio API (``/api/v1/radio/...``); its error messages are shown on
the page with its status. The playlist is reordered with up/down buttons (plain forms): the
handler reads the current order, moves the one track and sends the whole order back
(``PUT …/playlist``), which the API accepts only when it still names every track exactly once.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from halobuzz.web.client import ApiResult
from halobuzz.web.pages import Halt, Page, items, next_cursor, number, page_route, text

router = APIRouter(include_in_schema=False)
WEEKDAYS = tuple(range(7))  # 0 = Monday, as the API counts
CHANNEL_FIELDS = ("name", "description", "language", "category", "timezone")
SHOW_FIELDS = ("title", "host", "stream_id", "kind", "weekday", "start_time", "starts_at", "duration_minutes")


async def _usernames(page: Page, ids: list[str]) -> dict[str, str]:
    unique = list(dict.fromkeys(ids))
    found = await asyncio.gather(*(page.api.public(f"/users/{i}") for i in unique))
    return {i: str(r.data.get("username")) for i, r in zip(unique, found, strict=True) if r.ok}


# --- listeners ----------------------------------------------------------------------------------


@router.get("/radio", response_class=HTMLResponse)
@page_route
async def directory(request: Request) -> Response:
    page = await Page.open(request)
    cursor = request.query_params.get("cursor")
    result = await page.api.public("/radio/channels", limit=24, cursor=cursor)
    channels = items(result)
    more = next_cursor(result)
    return page.render(
        "radio.html",
        channels=channels,
        owners=await _usernames(page, [str(c["owner_id"]) for c in channels]),
        more=f"/radio?cursor={more}" if more else None,
        error=None if result.ok else result.error,
    )


@router.get("/radio/{channel_id}", response_class=HTMLResponse)
@page_route
async def channel_page(request: Request, channel_id: str) -> Response:
    page = await Page.open(request)
    cid = page.id_of(channel_id)
    channel_result, tracks, shows = await asyncio.gather(
        page.api.public(f"/radio/channels/{cid}"),
        page.api.public(f"/radio/channels/{cid}/tracks"),
        page.api.public(f"/radio/channels/{cid}/shows"),
    )
    channel = page.must(channel_result)
    # The listener URL for this visitor (a signed-in one counts once on every device); the
    # script renews it before it expires.
    playback = await page.api.get(f"/radio/channels/{cid}/playback")
    schedule = items(shows)
    names = await _usernames(page, [str(channel["owner_id"]), *(str(s["host_id"]) for s in schedule)])
    me = page.me or {}
    return page.render(
        "radio_channel.html",
        channel=channel,
        tracks=items(tracks),
        shows=schedule,
        names=names,
        playback=playback.data if playback.ok else None,
        owns=me.get("id") == channel["owner_id"] or page.has_role("admin"),
    )


# --- the studio ---------------------------------------------------------------------------------


async def _studio_view(
    page: Page, *, error: str | None = None, status: int = 200, values: dict[str, Any] | None = None
) -> Response:
    me = page.need_user()
    if not page.has_role("creator", "admin"):
        return page.render("studio_apply.html", status=status, error=error)
    mine = await page.api.public("/radio/channels", owner_id=str(me["id"]), limit=100)
    return page.render(
        "studio_radio.html",
        status=status,
        channels=items(mine),
        values=values or {"timezone": me.get("timezone") or "UTC", "language": me.get("language") or "en"},
        error=error or (None if mine.ok else mine.error),
    )


@router.get("/studio/radio", response_class=HTMLResponse)
@page_route
async def studio(request: Request) -> Response:
    page = await Page.open(request)
    return await _studio_view(page)


def _channel_fields(form: dict[str, Any], *, editing: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"name": text(form, "name"), "description": text(form, "description")}
    for name in ("language", "category", "timezone"):
        if text(form, name) or editing:
            body[name] = text(form, name) or None
    return body if editing else {k: v for k, v in body.items() if v is not None}


@router.post("/studio/radio")
@page_route
async def create_channel(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    created = await page.api.post("/radio/channels", _channel_fields(form, editing=False))
    if not created.ok:
        values = {k: text(form, k) for k in CHANNEL_FIELDS}
        return await _studio_view(page, error=created.error, status=created.status, values=values)
    return page.redirect(f"/studio/radio/{created.data['id']}?notice=radio_created")


async def _owned(page: Page, cid: str) -> dict[str, Any]:
    """The channel, or a 403 page for anyone but its owner (or an admin)."""
    me = page.need_user()
    channel: dict[str, Any] = page.must(await page.api.public(f"/radio/channels/{cid}"))
    if channel["owner_id"] != me["id"] and not page.has_role("admin"):
        raise Halt(page.render("error.html", status=403, message=page.t("radio.not_yours")))
    return channel


async def _channel_view(
    page: Page,
    cid: str,
    *,
    error: str | None = None,
    status: int = 200,
    values: dict[str, Any] | None = None,
    show_values: dict[str, Any] | None = None,
) -> Response:
    channel = await _owned(page, cid)
    tracks, shows, streams = await asyncio.gather(
        page.api.public(f"/radio/channels/{cid}/tracks"),
        page.api.public(f"/radio/channels/{cid}/shows"),
        page.api.get("/streams", owner=str(page.user["id"]), limit=50),
    )
    schedule = items(shows)
    names = await _usernames(page, [str(s["host_id"]) for s in schedule])
    return page.render(
        "studio_radio_channel.html",
        status=status,
        channel=channel,
        values=values or {k: channel.get(k) or "" for k in CHANNEL_FIELDS},
        show_values=show_values or {"kind": "weekly", "duration_minutes": "60", "host": page.user["username"]},
        tracks=items(tracks),
        shows=schedule,
        names=names,
        audio_streams=[s for s in items(streams) if s.get("audio_only")],
        weekdays=WEEKDAYS,
        error=error,
    )


@router.get("/studio/radio/{channel_id}", response_class=HTMLResponse)
@page_route
async def studio_channel(request: Request, channel_id: str) -> Response:
    page = await Page.open(request)
    return await _channel_view(page, page.id_of(channel_id))


async def _channel_form(request: Request, channel_id: str) -> tuple[Page, dict[str, Any], str]:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    return page, form, page.id_of(channel_id)


async def _after(page: Page, cid: str, result: ApiResult, notice: str = "saved") -> Response:
    if not result.ok:
        return await _channel_view(page, cid, error=result.error, status=result.status)
    return page.redirect(f"/studio/radio/{cid}?notice={notice}")


@router.post("/studio/radio/{channel_id}/edit")
@page_route
async def edit_channel(request: Request, channel_id: str) -> Response:
    page, form, cid = await _channel_form(request, channel_id)
    body = {k: v for k, v in _channel_fields(form, editing=True).items() if v is not None}
    result = await page.api.call("PATCH", f"/radio/channels/{cid}", json=body)
    if not result.ok:
        values = {k: text(form, k) for k in CHANNEL_FIELDS}
        return await _channel_view(page, cid, error=result.error, status=result.status, values=values)
    return page.redirect(f"/studio/radio/{cid}?notice=saved")


@router.post("/studio/radio/{channel_id}/delete")
@page_route
async def delete_channel(request: Request, channel_id: str) -> Response:
    page, _, cid = await _channel_form(request, channel_id)
    result = await page.api.call("DELETE", f"/radio/channels/{cid}")
    if not result.ok:
        return await _channel_view(page, cid, error=result.error, status=result.status)
    return page.redirect("/studio/radio?notice=radio_deleted")


@router.post("/studio/radio/{channel_id}/tracks")
@page_route
async def upload_track(request: Request, channel_id: str) -> Response:
    page, form, cid = await _channel_form(request, channel_id)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _channel_view(page, cid, error=page.t("radio.choose_file"), status=422)
    files: dict[str, Any] = {
        "file": (upload.filename, await upload.read(), upload.content_type or "application/octet-stream")
    }
    if text(form, "title"):
        files["title"] = (None, text(form, "title"))  # a plain form field next to the file
    result = await page.api.call("POST", f"/radio/channels/{cid}/tracks", files=files)
    return await _after(page, cid, result, "track_uploaded")


@router.post("/studio/radio/{channel_id}/tracks/{track_id}/move")
@page_route
async def move_track(request: Request, channel_id: str, track_id: str) -> Response:
    page, form, cid = await _channel_form(request, channel_id)
    tid = page.id_of(track_id)
    current = await page.api.public(f"/radio/channels/{cid}/tracks")
    if not current.ok:
        return await _after(page, cid, current)
    order = [str(t["id"]) for t in items(current)]
    if tid not in order:
        return await _channel_view(page, cid, error=page.t("error.not_found"), status=404)
    at = order.index(tid)
    to = at - 1 if text(form, "direction") == "up" else at + 1
    if 0 <= to < len(order):
        order[at], order[to] = order[to], order[at]
    result = await page.api.call("PUT", f"/radio/channels/{cid}/playlist", json={"track_ids": order})
    return await _after(page, cid, result, "playlist_saved")


@router.post("/studio/radio/{channel_id}/tracks/{track_id}/delete")
@page_route
async def delete_track(request: Request, channel_id: str, track_id: str) -> Response:
    page, _, cid = await _channel_form(request, channel_id)
    tid = page.id_of(track_id)
    return await _after(
        page, cid, await page.api.call("DELETE", f"/radio/channels/{cid}/tracks/{tid}"), "track_deleted"
    )


@router.post("/studio/radio/{channel_id}/shows")
@page_route
async def schedule_show(request: Request, channel_id: str) -> Response:
    page, form, cid = await _channel_form(request, channel_id)
    values = {k: text(form, k) for k in SHOW_FIELDS}
    host = values["host"] or page.user["username"]
    found = await page.api.public(f"/users/{quote(host, safe='')}")
    if not found.ok:
        return await _channel_view(page, cid, error=found.error, status=found.status, show_values=values)
    body: dict[str, Any] = {
        "title": values["title"],
        "host_id": str(found.data["id"]),
        "stream_id": values["stream_id"] or None,
        "duration_minutes": number(form, "duration_minutes"),
    }
    if values["kind"] == "dated":
        # datetime-local has no zone: the API reads it in the channel's time zone.
        when = values["starts_at"]
        body["starts_at"] = (when + ":00" if len(when) == 16 else when) or None
    else:
        body["weekday"] = number(form, "weekday")
        body["start_time"] = values["start_time"] or None
    result = await page.api.post(f"/radio/channels/{cid}/shows", body)
    if not result.ok:
        return await _channel_view(page, cid, error=result.error, status=result.status, show_values=values)
    return page.redirect(f"/studio/radio/{cid}?notice=show_scheduled")


@router.post("/studio/radio/{channel_id}/shows/{show_id}/delete")
@page_route
async def delete_show(request: Request, channel_id: str, show_id: str) -> Response:
    page, _, cid = await _channel_form(request, channel_id)
    sid = page.id_of(show_id)
    return await _after(page, cid, await page.api.call("DELETE", f"/radio/channels/{cid}/shows/{sid}"), "show_removed")
