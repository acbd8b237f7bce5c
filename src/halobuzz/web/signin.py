"""Signing in and out through pages, the page token for scripts, email verification and
password reset (the links in the mails land here)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from halobuzz.core.security import TokenError
from halobuzz.web.client import ApiResult
from halobuzz.web.pages import Page, page_route, safe_next, text
from halobuzz.web.session import CSRF_HEADER, CookieSession, clear_session_cookie, csrf_ok, set_session_cookie

router = APIRouter(include_in_schema=False)


async def _sign_in(page: Page, login: str, password: str, otp: str, next_url: str) -> Response | ApiResult:
    result = await page.api.post("/auth/login", {"login": login, "password": password, "otp": otp or None})
    if not result.ok:
        return result
    try:
        claims = page.runtime.jwt.decode_access(result.data["access_token"])
    except TokenError:
        return ApiResult(502, {"error": {"code": "bad_token", "message": page.t("error.title")}})
    response = page.redirect(next_url)
    set_session_cookie(page.request, response, page.runtime, CookieSession(claims.user_id, claims.session_id))
    return response


def _login_form(
    page: Page, *, values: dict[str, Any], next_url: str, error: str | None = None, status: int = 200
) -> Response:
    return page.render("login.html", status=status, values=values, next=next_url, error=error)


@router.get("/login", response_class=HTMLResponse)
@page_route
async def login_form(request: Request) -> Response:
    page = await Page.open(request)
    return _login_form(page, values={}, next_url=safe_next(request.query_params.get("next")))


@router.post("/login")
@page_route
async def login_submit(request: Request) -> Response:
    page = await Page.open(request)
    form = await page.form()
    next_url = safe_next(form.get("next"))
    outcome = await _sign_in(page, text(form, "login"), str(form.get("password") or ""), text(form, "otp"), next_url)
    if isinstance(outcome, ApiResult):
        values = {"login": text(form, "login"), "otp_required": outcome.code in ("otp_required", "invalid_otp")}
        return _login_form(page, values=values, next_url=next_url, error=outcome.error, status=outcome.status)
    return outcome


@router.get("/signup", response_class=HTMLResponse)
@page_route
async def signup_form(request: Request) -> Response:
    page = await Page.open(request)
    return page.render("signup.html", values={})


@router.post("/signup")
@page_route
async def signup_submit(request: Request) -> Response:
    page = await Page.open(request)
    form = await page.form()
    values = {
        "username": text(form, "username"),
        "email": text(form, "email"),
        "password": str(form.get("password") or ""),
    }
    created = await page.api.post("/auth/register", values)
    if not created.ok:
        shown = {k: v for k, v in values.items() if k != "password"}
        return page.render("signup.html", status=created.status, error=created.error, values=shown)
    outcome = await _sign_in(page, values["username"], values["password"], "", "/?notice=welcome")
    if isinstance(outcome, ApiResult):
        return _login_form(page, values={}, next_url="/", error=outcome.error, status=outcome.status)
    return outcome


@router.post("/logout")
@page_route
async def logout(request: Request) -> Response:
    page = await Page.open(request)
    await page.form()
    if page.me is not None:
        await page.api.post("/auth/logout")
    response = page.redirect("/")
    clear_session_cookie(request, response)
    return response


@router.post("/web/token")
@page_route
async def web_token(request: Request) -> Response:
    """A short-lived access token for this page session, for scripts (Socket.IO, API calls)."""
    page = await Page.open(request)
    if not csrf_ok(page.runtime, request, request.headers.get(CSRF_HEADER)):
        return page.json({"error": {"code": "csrf_failed", "message": page.t("error.csrf")}}, 403)
    if page.me is None:
        return page.json({"error": {"code": "not_authenticated", "message": page.t("error.sign_in")}}, 401)
    return page.json({"access_token": page.api.token, "user": {"id": page.me["id"], "username": page.me["username"]}})


# --- email verification and password reset ----------------------------------------------------


@router.get("/verify-email", response_class=HTMLResponse)
@page_route
async def verify_email_form(request: Request) -> Response:
    """The mailed link opens a page with a button: mail scanners that follow links use no token."""
    page = await Page.open(request)
    return page.render("verify_email.html", token=request.query_params.get("token") or "")


@router.post("/verify-email")
@page_route
async def verify_email_submit(request: Request) -> Response:
    page = await Page.open(request)
    form = await page.form()
    result = await page.api.post("/auth/verify-email", {"token": text(form, "token")})
    if not result.ok:
        return page.render("verify_email.html", status=result.status, token=text(form, "token"), error=result.error)
    return page.redirect(("/account" if page.me else "/login") + "?notice=email_verified")


@router.get("/forgot-password", response_class=HTMLResponse)
@page_route
async def forgot_form(request: Request) -> Response:
    page = await Page.open(request)
    return page.render("forgot_password.html", values={})


@router.post("/forgot-password")
@page_route
async def forgot_submit(request: Request) -> Response:
    page = await Page.open(request)
    form = await page.form()
    result = await page.api.post("/auth/password-reset/request", {"email": text(form, "email")})
    if not result.ok:
        return page.render(
            "forgot_password.html", status=result.status, values={"email": text(form, "email")}, error=result.error
        )
    return page.redirect("/login?notice=reset_mailed")


@router.get("/reset-password", response_class=HTMLResponse)
@page_route
async def reset_form(request: Request) -> Response:
    page = await Page.open(request)
    return page.render("reset_password.html", token=request.query_params.get("token") or "")


@router.post("/reset-password")
@page_route
async def reset_submit(request: Request) -> Response:
    page = await Page.open(request)
    form = await page.form()
    body = {"token": text(form, "token"), "new_password": str(form.get("new_password") or "")}
    result = await page.api.post("/auth/password-reset/confirm", body)
    if not result.ok:
        return page.render("reset_password.html", status=result.status, token=body["token"], error=result.error)
    return page.redirect("/login?notice=password_reset")
