"""The account: profile, avatar, password, email verification, two-factor authentication,
signed-in devices, blocked users, and applying to become a creator."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from halobuzz.web.client import ApiResult
from halobuzz.web.pages import Page, items, page_route, text

router = APIRouter(include_in_schema=False)
PROFILE_FIELDS = ("display_name", "bio", "language", "country", "timezone")


async def _account_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    page.need_user()
    sessions, blocks = await asyncio.gather(
        page.api.get("/users/me/sessions", limit=50), page.api.get("/users/me/blocks")
    )
    return page.render("account.html", status=status, sessions=items(sessions), blocks=items(blocks), error=error)


async def _done(page: Page, result: ApiResult, notice: str = "saved") -> Response:
    if not result.ok:
        if result.status == 401:  # the sign-in itself has ended
            page.me, page.ended = None, True
            page.need_user()
        # Show the form again as the user left it, with the API's message.
        me = await page.api.get("/users/me")
        if me.ok:
            page.me = me.data
        return await _account_view(page, error=result.error, status=result.status)
    return page.redirect(f"/account?notice={notice}")


@router.get("/account", response_class=HTMLResponse)
@page_route
async def account(request: Request) -> Response:
    page = await Page.open(request)
    return await _account_view(page)


@router.post("/account/profile")
@page_route
async def profile(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    body: dict[str, object] = {k: text(form, k) for k in PROFILE_FIELDS if k in form}
    if body.get("country") == "":
        body["country"] = None
    if body.get("timezone") == "":
        body.pop("timezone")
    return await _done(page, await page.api.call("PATCH", "/users/me", json=body))


@router.post("/account/password")
@page_route
async def password(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    body = {
        "current_password": str(form.get("current_password") or ""),
        "new_password": str(form.get("new_password") or ""),
    }
    return await _done(page, await page.api.post("/users/me/password", body), "password_changed")


@router.post("/account/avatar")
@page_route
async def avatar(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _account_view(page, error=page.t("account.choose_image"), status=422)
    data = await upload.read()
    files = {"file": (upload.filename, data, upload.content_type or "application/octet-stream")}
    return await _done(page, await page.api.call("PUT", "/users/me/avatar", files=files))


@router.post("/account/avatar/remove")
@page_route
async def avatar_remove(request: Request) -> Response:
    page = await Page.open(request)
    await page.signed_form()
    return await _done(page, await page.api.call("DELETE", "/users/me/avatar"))


@router.post("/account/sessions/{session_id}/revoke")
@page_route
async def revoke(request: Request, session_id: str) -> Response:
    page = await Page.open(request)
    await page.signed_form()
    sid = page.id_of(session_id)
    return await _done(page, await page.api.call("DELETE", f"/users/me/sessions/{sid}"), "signed_out_device")


@router.post("/account/verify-email/resend")
@page_route
async def resend_verification(request: Request) -> Response:
    page = await Page.open(request)
    await page.signed_form()
    return await _done(page, await page.api.post("/auth/resend-verification"), "verification_sent")


@router.post("/account/creator")
@page_route
async def apply_creator(request: Request) -> Response:
    page = await Page.open(request)
    await page.signed_form()
    result = await page.api.post("/users/me/creator")
    if result.ok and "creator" in (result.data or {}).get("roles", []):
        return page.redirect("/studio?notice=creator_approved")
    return await _done(page, result, "creator_applied")


# --- two-factor authentication ----------------------------------------------------------------


@router.get("/account/2fa", response_class=HTMLResponse)
@page_route
async def two_factor(request: Request) -> Response:
    """Where admins without two-factor authentication are sent before the admin panel."""
    page = await Page.open(request)
    page.need_user()
    required = request.query_params.get("required") == "admin"
    return page.render("account_2fa.html", setup=None, codes=None, required=required)


@router.post("/account/2fa/setup")
@page_route
async def two_factor_setup(request: Request) -> Response:
    page = await Page.open(request)
    await page.signed_form()
    result = await page.api.post("/users/me/2fa/setup")
    if not result.ok:
        return await _done(page, result)
    return page.render("account_2fa.html", setup=result.data, codes=None, required=False)


@router.post("/account/2fa/confirm")
@page_route
async def two_factor_confirm(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    result = await page.api.post("/users/me/2fa/confirm", {"otp": text(form, "otp")})
    if not result.ok:
        setup = {"secret": text(form, "secret"), "otpauth_uri": text(form, "otpauth_uri")}
        return page.render(
            "account_2fa.html", status=result.status, setup=setup, codes=None, required=False, error=result.error
        )
    me = await page.api.get("/users/me")
    if me.ok:
        page.me = me.data
    return page.render("account_2fa.html", setup=None, codes=result.data.get("recovery_codes", []), required=False)


@router.post("/account/2fa/disable")
@page_route
async def two_factor_disable(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    body = {"password": str(form.get("password") or ""), "otp": text(form, "otp")}
    return await _done(page, await page.api.post("/users/me/2fa/disable", body))
