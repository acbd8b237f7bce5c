"""The creator studio: streams (create, edit, go live, the stream key with OBS set-up), stream
health, chat moderation, gifts and per-broadcast numbers, recordings, earnings and payouts.

Channel moderators reach a stream's studio page too, with only its moderation tools.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from halobuzz.web.client import ApiResult
from halobuzz.web.pages import Halt, Page, items, number, page_route, text

router = APIRouter(include_in_schema=False)
TIMEOUTS = (60, 600, 3600, 86400)


# --- the studio home ----------------------------------------------------------------------------


async def _studio_view(
    page: Page, *, error: str | None = None, status: int = 200, values: dict[str, Any] | None = None
) -> Response:
    me = page.need_user()
    if not page.has_role("creator", "admin"):
        return page.render("studio_apply.html", status=status, error=error)
    streams, cats, earnings = await asyncio.gather(
        page.api.get("/streams", owner=str(me["id"]), limit=50),
        page.api.get("/categories"),
        page.api.get("/wallet/earnings"),
    )
    return page.render(
        "studio.html",
        status=status,
        streams=items(streams),
        categories=items(cats),
        earnings=earnings.data if earnings.ok else None,
        values=values or {},
        error=error or (None if streams.ok else streams.error),
    )


@router.get("/studio", response_class=HTMLResponse)
@page_route
async def studio(request: Request) -> Response:
    page = await Page.open(request)
    return await _studio_view(page)


def _stream_fields(form: dict[str, Any], *, editing: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"title": text(form, "title")}
    if editing or text(form, "description"):
        body["description"] = text(form, "description")
    category = text(form, "category")
    if category or editing:
        body["category"] = category or None
    tags = [t.strip() for t in text(form, "tags").split(",") if t.strip()]
    if tags or editing:
        body["tags"] = tags
    if text(form, "language"):
        body["language"] = text(form, "language")
    if text(form, "region"):
        body["region"] = text(form, "region")
    body["audio_only"] = bool(form.get("audio_only"))
    when = text(form, "scheduled_start_at")
    if when:
        # datetime-local has no zone: the form says the time is UTC.
        body["scheduled_start_at"] = when if ("+" in when[10:] or when.endswith("Z")) else when + ":00+00:00"
    elif editing:
        body["scheduled_start_at"] = None
    return body


@router.post("/studio/streams")
@page_route
async def create_stream(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    created = await page.api.post("/streams", _stream_fields(form, editing=False))
    if not created.ok:
        values = {k: text(form, k) for k in ("title", "description", "category", "tags", "language", "region")}
        return await _studio_view(page, error=created.error, status=created.status, values=values)
    return await _stream_view(
        page, str(created.data["id"]), stream_key=str(created.data["stream_key"]), notice="stream_created"
    )


# --- one stream ---------------------------------------------------------------------------------


async def _access(page: Page, stream_id: str) -> tuple[dict[str, Any], bool, list[Any]]:
    """(the stream, whether the user runs it — owner or admin —, its channel moderators), or a 403
    page for anyone who may not moderate it."""
    me = page.need_user()
    stream_result, moderators = await asyncio.gather(
        page.api.get(f"/streams/{stream_id}"), page.api.get(f"/streams/{stream_id}/chat/moderators")
    )
    stream = page.must(stream_result)
    runs = (stream.get("owner") or {}).get("id") == me["id"] or page.has_role("admin")
    mods = items(moderators)
    if (
        not runs
        and not page.has_role("moderator")
        and not any((m.get("user") or {}).get("id") == me["id"] for m in mods)
    ):
        raise Halt(page.render("error.html", status=403, message=page.t("studio.not_yours")))
    return stream, runs, mods


async def _stream_view(
    page: Page,
    stream_id: str,
    *,
    stream_key: str | None = None,
    error: str | None = None,
    status: int = 200,
    notice: str | None = None,
) -> Response:
    stream, runs, moderators = await _access(page, stream_id)
    reads = [
        page.api.get(f"/streams/{stream_id}/chat/modes"),
        page.api.get(f"/streams/{stream_id}/chat/bans"),
        page.api.get(f"/streams/{stream_id}/chat", limit=50),
        page.api.get(f"/streams/{stream_id}/gifts/leaderboard"),
    ]
    if runs:
        reads += [
            page.api.get(f"/streams/{stream_id}/stats", limit=10),
            page.api.get(f"/streams/{stream_id}/media/health"),
            page.api.get(f"/streams/{stream_id}/recordings"),
            page.api.get("/categories"),
            page.api.get(f"/streams/{stream_id}/guests"),
            page.api.get(f"/streams/{stream_id}/thumbnail"),
        ]
    modes, bans, chat, board, *owner_only = await asyncio.gather(*reads)
    stats, health, recordings, cats, guests, cover = owner_only if runs else (None,) * 6
    guest_list = items(guests) if guests else []
    names = await _usernames(page, [str(g["user_id"]) for g in guest_list])
    host = page.request.url.hostname or "127.0.0.1"
    port = page.runtime.settings.media.rtmp_port
    return page.render(
        "studio_stream.html",
        status=status,
        stream=stream,
        runs=runs,
        stream_key=stream_key,
        modes=modes.data if modes.ok else {},
        bans=items(bans),
        messages=items(chat),
        moderators=moderators,
        leaderboard=items(board),
        stats=items(stats) if stats else [],
        health=health.data if health is not None and health.ok else None,
        recordings=items(recordings) if recordings else [],
        categories=items(cats) if cats else [],
        guests=[{**g, "username": names.get(str(g["user_id"]), str(g["user_id"])[:8])} for g in guest_list],
        cover_url=cover.headers.get("location") if cover is not None and cover.status == 307 else None,
        timeouts=TIMEOUTS,
        ingest_url=f"rtmp://{host}{'' if port == 1935 else f':{port}'}/live",
        notice=page.t(f"notice.{notice}") if notice else page.notice(),
        error=error,
    )


async def _usernames(page: Page, ids: list[str]) -> dict[str, str]:
    found = await asyncio.gather(*(page.api.get(f"/users/{i}") for i in ids))
    return {i: str(r.data.get("username")) for i, r in zip(ids, found, strict=True) if r.ok}


@router.get("/studio/streams/{stream_id}", response_class=HTMLResponse)
@page_route
async def stream_page(request: Request, stream_id: str) -> Response:
    page = await Page.open(request)
    return await _stream_view(page, page.id_of(stream_id))


async def _after(page: Page, stream_id: str, result: ApiResult, notice: str = "saved") -> Response:
    if not result.ok:
        return await _stream_view(page, stream_id, error=result.error, status=result.status)
    return page.redirect(f"/studio/streams/{stream_id}?notice={notice}")


async def _stream_form(request: Request, stream_id: str) -> tuple[Page, dict[str, Any], str]:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    return page, form, page.id_of(stream_id)


@router.post("/studio/streams/{stream_id}/rotate")
@page_route
async def rotate_key(request: Request, stream_id: str) -> Response:
    page, _, sid = await _stream_form(request, stream_id)
    rotated = await page.api.post(f"/streams/{sid}/key/rotate")
    if not rotated.ok:
        return await _stream_view(page, sid, error=rotated.error, status=rotated.status)
    return await _stream_view(page, sid, stream_key=str(rotated.data["stream_key"]), notice="key_rotated")


@router.post("/studio/streams/{stream_id}/start")
@page_route
async def go_live(request: Request, stream_id: str) -> Response:
    page, _, sid = await _stream_form(request, stream_id)
    return await _after(page, sid, await page.api.post(f"/streams/{sid}/start"), "live")


@router.post("/studio/streams/{stream_id}/end")
@page_route
async def end(request: Request, stream_id: str) -> Response:
    page, _, sid = await _stream_form(request, stream_id)
    return await _after(page, sid, await page.api.post(f"/streams/{sid}/end"), "ended")


@router.post("/studio/streams/{stream_id}/edit")
@page_route
async def edit(request: Request, stream_id: str) -> Response:
    page, form, sid = await _stream_form(request, stream_id)
    return await _after(
        page, sid, await page.api.call("PATCH", f"/streams/{sid}", json=_stream_fields(form, editing=True))
    )


@router.post("/studio/streams/{stream_id}/delete")
@page_route
async def delete(request: Request, stream_id: str) -> Response:
    page, _, sid = await _stream_form(request, stream_id)
    result = await page.api.call("DELETE", f"/streams/{sid}")
    if not result.ok:
        return await _stream_view(page, sid, error=result.error, status=result.status)
    return page.redirect("/studio?notice=stream_deleted")


@router.post("/studio/streams/{stream_id}/modes")
@page_route
async def modes(request: Request, stream_id: str) -> Response:
    page, form, sid = await _stream_form(request, stream_id)
    followers = number(form, "followers_only_minutes")
    body = {
        "slow_mode_seconds": number(form, "slow_mode_seconds") or 0,
        "followers_only_minutes": (followers if followers is not None else 0) if form.get("followers_only") else None,
        "emote_only": bool(form.get("emote_only")),
        "subscribers_only": bool(form.get("subscribers_only")),
    }
    return await _after(page, sid, await page.api.call("PATCH", f"/streams/{sid}/chat/modes", json=body))


@router.post("/studio/streams/{stream_id}/messages/{message_id}/delete")
@page_route
async def delete_message(request: Request, stream_id: str, message_id: str) -> Response:
    page, _, sid = await _stream_form(request, stream_id)
    mid = page.id_of(message_id)
    return await _after(
        page, sid, await page.api.call("DELETE", f"/streams/{sid}/chat/messages/{mid}"), "message_deleted"
    )


async def _target_user(page: Page, form: dict[str, Any]) -> str | ApiResult:
    """The user a moderation form names, by id (buttons next to messages) or by username."""
    given = text(form, "user_id")
    if given:
        return given
    found = await page.api.get(f"/users/{text(form, 'username') or '-'}")
    return str(found.data["id"]) if found.ok else found


@router.post("/studio/streams/{stream_id}/timeout")
@page_route
async def timeout(request: Request, stream_id: str) -> Response:
    page, form, sid = await _stream_form(request, stream_id)
    target = await _target_user(page, form)
    if isinstance(target, ApiResult):
        return await _after(page, sid, target)
    body = {"user_id": target, "duration_seconds": number(form, "duration_seconds"), "reason": text(form, "reason")}
    return await _after(page, sid, await page.api.post(f"/streams/{sid}/chat/timeouts", body), "timed_out")


@router.post("/studio/streams/{stream_id}/ban")
@page_route
async def ban(request: Request, stream_id: str) -> Response:
    page, form, sid = await _stream_form(request, stream_id)
    target = await _target_user(page, form)
    if isinstance(target, ApiResult):
        return await _after(page, sid, target)
    body = {"user_id": target, "reason": text(form, "reason")}
    return await _after(page, sid, await page.api.post(f"/streams/{sid}/chat/bans", body), "banned")


@router.post("/studio/streams/{stream_id}/bans/{user_id}/lift")
@page_route
async def lift(request: Request, stream_id: str, user_id: str) -> Response:
    page, _, sid = await _stream_form(request, stream_id)
    target = page.id_of(user_id)
    return await _after(page, sid, await page.api.call("DELETE", f"/streams/{sid}/chat/bans/{target}"), "ban_lifted")


@router.post("/studio/streams/{stream_id}/moderators")
@page_route
async def add_moderator(request: Request, stream_id: str) -> Response:
    page, form, sid = await _stream_form(request, stream_id)
    target = await _target_user(page, form)
    if isinstance(target, ApiResult):
        return await _after(page, sid, target)
    return await _after(page, sid, await page.api.call("PUT", f"/streams/{sid}/chat/moderators/{target}"))


@router.post("/studio/streams/{stream_id}/moderators/{user_id}/remove")
@page_route
async def remove_moderator(request: Request, stream_id: str, user_id: str) -> Response:
    page, _, sid = await _stream_form(request, stream_id)
    target = page.id_of(user_id)
    return await _after(page, sid, await page.api.call("DELETE", f"/streams/{sid}/chat/moderators/{target}"))


@router.post("/studio/streams/{stream_id}/recordings/{recording_id}/delete")
@page_route
async def delete_recording(request: Request, stream_id: str, recording_id: str) -> Response:
    page, _, sid = await _stream_form(request, stream_id)
    rid = page.id_of(recording_id)
    return await _after(page, sid, await page.api.call("DELETE", f"/media/recordings/{rid}"), "recording_deleted")


@router.post("/studio/streams/{stream_id}/cover")
@page_route
async def cover(request: Request, stream_id: str) -> Response:
    page, form, sid = await _stream_form(request, stream_id)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _stream_view(page, sid, error=page.t("account.choose_image"), status=422)
    files = {"file": (upload.filename, await upload.read(), upload.content_type or "application/octet-stream")}
    return await _after(page, sid, await page.api.call("PUT", f"/streams/{sid}/thumbnail", files=files), "cover_saved")


@router.post("/studio/streams/{stream_id}/cover/remove")
@page_route
async def cover_remove(request: Request, stream_id: str) -> Response:
    page, _, sid = await _stream_form(request, stream_id)
    return await _after(page, sid, await page.api.call("DELETE", f"/streams/{sid}/thumbnail"), "cover_removed")


@router.post("/studio/streams/{stream_id}/guests")
@page_route
async def invite_guest(request: Request, stream_id: str) -> Response:
    page, form, sid = await _stream_form(request, stream_id)
    target = await _target_user(page, form)
    if isinstance(target, ApiResult):
        return await _after(page, sid, target)
    return await _after(page, sid, await page.api.post(f"/streams/{sid}/guests", {"user_id": target}), "guest_invited")


@router.post("/studio/streams/{stream_id}/guests/{user_id}/remove")
@page_route
async def remove_guest(request: Request, stream_id: str, user_id: str) -> Response:
    page, _, sid = await _stream_form(request, stream_id)
    target = page.id_of(user_id)
    return await _after(page, sid, await page.api.call("DELETE", f"/streams/{sid}/guests/{target}"), "guest_removed")


# --- earnings and payouts -----------------------------------------------------------------------


async def _earnings_view(
    page: Page, *, error: str | None = None, status: int = 200, values: dict[str, Any] | None = None
) -> Response:
    page.need_user()
    earnings, payouts = await asyncio.gather(
        page.api.get("/wallet/earnings"),
        page.api.get("/payouts", limit=50, cursor=page.request.query_params.get("cursor")),
    )
    settings = page.runtime.settings.payouts
    summary = earnings.data if earnings.ok else {}
    return page.render(
        "studio_earnings.html",
        status=status,
        earnings=summary,
        periods=[(page.t(f"earnings.period.{k}"), v) for k, v in (summary.get("by_period") or {}).items()],
        payouts=items(payouts),
        rates=settings.rates,
        methods=settings.methods,
        min_coins=settings.min_coins,
        values=values or {},
        error=error or (None if earnings.ok else earnings.error),
    )


@router.get("/studio/earnings", response_class=HTMLResponse)
@page_route
async def earnings(request: Request) -> Response:
    page = await Page.open(request)
    return await _earnings_view(page)


@router.post("/studio/payouts")
@page_route
async def request_payout(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    values = {k: text(form, k) for k in ("coins", "currency", "method", "destination")}
    body = {**values, "coins": number(form, "coins")}
    result = await page.api.call(
        "POST", "/payouts", json=body, headers={"idempotency-key": text(form, "idempotency_key") or str(uuid.uuid4())}
    )
    if not result.ok:
        return await _earnings_view(page, error=result.error, status=result.status, values=values)
    return page.redirect("/studio/earnings?notice=payout_requested")
