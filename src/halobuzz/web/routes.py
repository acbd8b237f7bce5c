"""Page routes: thin handlers that call the API in process and render Jinja2 templates.

Every unsafe request carries a CSRF token; every form is validated by the API and its error
message is shown on the page. Pages work without JavaScript where they can (lists, forms); the
scripts in ``static/js`` add live chat, gifts and the video player.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from halobuzz.core.runtime import Runtime
from halobuzz.core.security import TokenError
from halobuzz.web import i18n
from halobuzz.web.client import Api, ApiResult
from halobuzz.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    CookieSession,
    clear_session_cookie,
    csrf_ok,
    csrf_seed,
    csrf_token,
    decode_session,
    set_csrf_cookie,
    set_session_cookie,
)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; worker-src 'self' blob:; font-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
router = APIRouter(include_in_schema=False)


class Page:
    """One page request: who is signed in, the language, the CSRF token and the API client."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.runtime: Runtime = request.app.state.runtime
        self.cookie: CookieSession | None = decode_session(self.runtime, request.cookies.get(SESSION_COOKIE))
        self.me: dict[str, Any] | None = None
        self.ended = False  # a session cookie whose sign-in has ended
        self.seed, self.new_seed = csrf_seed(request)
        self.csrf = csrf_token(self.runtime, self.seed)
        state = request.scope.get("state", {})
        ip = str(state.get("client_ip") or (request.client.host if request.client else "127.0.0.1"))
        token = None
        if self.cookie is not None:
            token, _ = self.runtime.jwt.issue_access(
                user_id=self.cookie.user_id, session_id=self.cookie.session_id, roles=()
            )
        self.api = Api(request.app, token, ip=ip, user_agent=request.headers.get("user-agent", ""))
        self.lang = i18n.DEFAULT

    async def load(self) -> Page:
        if self.cookie is not None:
            me = await self.api.get("/users/me")
            if me.ok:
                self.me = me.data
            else:
                self.ended, self.cookie, self.api.token = True, None, None
        q = self.request.query_params
        self.lang = i18n.choose(
            query=q.get("lang"),
            cookie=self.request.cookies.get(i18n.LANG_COOKIE),
            profile=(self.me or {}).get("language"),
            accept=self.request.headers.get("accept-language"),
        )
        return self

    def has_role(self, *roles: str) -> bool:
        return bool(self.me) and any(r in (self.me or {}).get("roles", []) for r in roles)

    def t(self, key: str, **values: object) -> str:
        return i18n.translate(self.lang, key, **values)

    def finish(self, response: Response) -> Response:
        response.headers["content-security-policy"] = CSP
        response.headers["cache-control"] = "no-store"
        if self.new_seed:
            set_csrf_cookie(self.request, response, self.seed)
        if self.ended:
            clear_session_cookie(self.request, response)
        chosen = self.request.query_params.get("lang")
        if chosen in i18n.LANGUAGES:
            response.set_cookie(i18n.LANG_COOKIE, chosen, max_age=86400 * 365, samesite="lax", path="/")
        return response

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        html = env.get_template(template).render(
            page=self,
            me=self.me,
            t=self.t,
            lang=self.lang,
            dir="rtl" if self.lang in i18n.RTL else "ltr",
            languages=i18n.LANGUAGES,
            csrf=self.csrf,
            csrf_field=CSRF_FIELD,
            path=self.request.url.path,
            **context,
        )
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303))

    async def form(self) -> dict[str, Any] | None:
        """The submitted form, or ``None`` when its CSRF token is missing or wrong."""
        data = await self.request.form()
        values = {k: v for k, v in data.multi_items()}
        if not csrf_ok(self.runtime, self.request, str(values.get(CSRF_FIELD) or "")):
            return None
        return values


async def page_of(request: Request) -> Page:
    return await Page(request).load()


def _csrf_failed(page: Page) -> Response:
    return page.render("error.html", status=403, message=page.t("error.csrf"))


def _need_sign_in(page: Page) -> Response:
    return page.redirect(f"/login?next={page.request.url.path}")


# --- viewer ---------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    page = await page_of(request)
    q = request.query_params
    category, language, search = q.get("category") or None, q.get("language") or None, (q.get("q") or "").strip()
    live = await page.api.get("/streams/live", category=category, language=language, cursor=q.get("cursor"), limit=48)
    cats = await page.api.get("/categories")
    items = live.data.get("items", []) if live.ok else []
    if search:
        needle = search.casefold()
        items = [s for s in items if needle in str(s.get("title", "")).casefold()]
    return page.render(
        "home.html",
        streams=items,
        next_cursor=live.data.get("next_cursor") if live.ok else None,
        categories=cats.data.get("items", []) if cats.ok else [],
        filters={"category": category or "", "language": language or "", "q": search},
        error=None if live.ok else live.error,
    )


@router.get("/streams/{stream_id}", response_class=HTMLResponse)
async def stream_page(request: Request, stream_id: str) -> Response:
    page = await page_of(request)
    stream = await page.api.get(f"/streams/{stream_id}")
    if not stream.ok:
        return page.render("error.html", status=stream.status, message=stream.error)
    gifts = await page.api.get("/gifts")
    modes = await page.api.get(f"/streams/{stream_id}/chat/modes")
    history = await page.api.get(f"/streams/{stream_id}/chat", limit=50)
    broadcasts = await page.api.get(f"/streams/{stream_id}/broadcasts", limit=10)
    hls_url = None
    if stream.data.get("status") == "live":
        # Served by the media plane when it is enabled; a 404 keeps the placeholder.
        playback = await page.api.get(f"/streams/{stream_id}/playback")
        if playback.ok and isinstance(playback.data, dict):
            candidate = str(playback.data.get("hls_url") or playback.data.get("url") or "")
            # Only hand the player a playlist that exists (the publisher may not have started yet).
            if candidate.startswith("/api/v1/"):
                master = await page.api.call("GET", candidate, raw_path=True)
                hls_url = candidate if master.ok else None
            elif candidate:
                hls_url = candidate
    return page.render(
        "stream.html",
        stream=stream.data,
        hls_url=hls_url,
        gifts=gifts.data.get("items", []) if gifts.ok else [],
        modes=modes.data if modes.ok else {},
        messages=history.data.get("items", []) if history.ok else [],
        broadcasts=broadcasts.data.get("items", []) if broadcasts.ok else [],
        notice=request.query_params.get("notice"),
        error=request.query_params.get("error"),
    )


@router.post("/streams/{stream_id}/gift")
async def send_gift_form(request: Request, stream_id: str) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    result = await page.api.call(
        "POST",
        f"/streams/{stream_id}/gifts",
        json={"gift_id": form.get("gift_id"), "quantity": 1},
        headers={"idempotency-key": str(form.get("idempotency_key") or uuid.uuid4())},
    )
    return page.redirect(f"/streams/{stream_id}?" + ("notice=gift_sent" if result.ok else "error=" + result.error))


@router.post("/users/{username}/follow")
async def follow_form(request: Request, username: str) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    method = "DELETE" if form.get("action") == "unfollow" else "POST"
    await page.api.call(method, f"/users/{username}/follow")
    back = str(form.get("next") or "/")
    return page.redirect(back if back.startswith("/") and not back.startswith("//") else "/")


# --- sign-in --------------------------------------------------------------------------------


def _safe_next(value: object) -> str:
    text = str(value or "/")
    return text if text.startswith("/") and not text.startswith("//") else "/"


async def _sign_in(page: Page, login: str, password: str, otp: str | None, next_url: str) -> Response | ApiResult:
    result = await page.api.post("/auth/login", {"login": login, "password": password, "otp": otp or None})
    if not result.ok:
        return result
    try:
        claims = page.runtime.jwt.decode_access(result.data["access_token"])
    except TokenError:
        return ApiResult(500, None)
    response = page.redirect(next_url)
    set_session_cookie(page.request, response, page.runtime, CookieSession(claims.user_id, claims.session_id))
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    page = await page_of(request)
    return page.render("login.html", error=None, values={}, next=_safe_next(request.query_params.get("next")))


@router.post("/login")
async def login_submit(request: Request) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    next_url = _safe_next(form.get("next"))
    outcome = await _sign_in(
        page, str(form.get("login", "")), str(form.get("password", "")), str(form.get("otp") or ""), next_url
    )
    if isinstance(outcome, ApiResult):
        values = {"login": form.get("login", "")}
        return page.render("login.html", status=outcome.status, error=outcome.error, values=values, next=next_url)
    return outcome


@router.get("/signup", response_class=HTMLResponse)
async def signup_form(request: Request) -> Response:
    page = await page_of(request)
    return page.render("signup.html", error=None, values={})


@router.post("/signup")
async def signup_submit(request: Request) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    values = {k: str(form.get(k, "")) for k in ("username", "email", "password")}
    created = await page.api.post("/auth/register", values)
    if not created.ok:
        return page.render("signup.html", status=created.status, error=created.error, values=values)
    outcome = await _sign_in(page, values["username"], values["password"], None, "/")
    if isinstance(outcome, ApiResult):
        return page.render("login.html", status=outcome.status, error=outcome.error, values={}, next="/")
    return outcome


@router.post("/logout")
async def logout(request: Request) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is not None:
        await page.api.post("/auth/logout")
    response = page.redirect("/")
    clear_session_cookie(request, response)
    return response


@router.post("/web/token")
async def web_token(request: Request) -> Response:
    """A short-lived access token for this page session, for scripts (Socket.IO, API calls)."""
    page = await page_of(request)
    if not csrf_ok(page.runtime, request, request.headers.get(CSRF_HEADER)):
        return page.finish(JSONResponse({"error": {"code": "csrf_failed", "message": "bad CSRF token"}}, 403))
    if page.me is None:
        return page.finish(JSONResponse({"error": {"code": "not_authenticated", "message": "sign in"}}, 401))
    return page.finish(JSONResponse({"access_token": page.api.token, "user": {"id": page.me["id"]}}))


# --- wallet ---------------------------------------------------------------------------------


@router.get("/wallet", response_class=HTMLResponse)
async def wallet(request: Request) -> Response:
    page = await page_of(request)
    if page.me is None:
        return _need_sign_in(page)
    balance = await page.api.get("/wallet")
    history = await page.api.get("/wallet/transactions", limit=50)
    packages = await page.api.get("/coin-packages")
    return page.render(
        "wallet.html",
        wallet=balance.data if balance.ok else {},
        entries=history.data.get("items", []) if history.ok else [],
        packages=packages.data.get("items", []) if packages.ok else [],
        notice=request.query_params.get("notice"),
        error=request.query_params.get("error"),
    )


@router.post("/wallet/buy")
async def wallet_buy(request: Request) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    provider = str(form.get("provider") or "sandbox")
    intent = await page.api.call(
        "POST",
        "/payments/intents",
        json={"package_id": form.get("package_id"), "provider": provider, "currency": form.get("currency") or "NPR"},
        headers={"idempotency-key": str(form.get("idempotency_key") or uuid.uuid4())},
    )
    if not intent.ok:
        return page.redirect("/wallet?error=" + intent.error)
    if provider != "sandbox":
        redirect = intent.data.get("redirect_url") or intent.data.get("checkout_url")
        return page.redirect(str(redirect) if redirect else "/wallet")
    paid = await page.api.post(f"/payments/sandbox/{intent.data['id']}/complete")
    return page.redirect("/wallet?" + ("notice=bought" if paid.ok else "error=" + paid.error))


# --- account --------------------------------------------------------------------------------


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request) -> Response:
    page = await page_of(request)
    if page.me is None:
        return _need_sign_in(page)
    sessions = await page.api.get("/users/me/sessions")
    return page.render(
        "account.html",
        sessions=sessions.data.get("items", []) if sessions.ok else [],
        notice=request.query_params.get("notice"),
        error=request.query_params.get("error"),
    )


@router.post("/account/profile")
async def account_profile(request: Request) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    body = {k: str(form[k]) for k in ("display_name", "bio", "language") if k in form}
    result = await page.api.call("PATCH", "/users/me", json=body)
    return page.redirect("/account?" + ("notice=saved" if result.ok else "error=" + result.error))


@router.post("/account/password")
async def account_password(request: Request) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    body = {"current_password": form.get("current_password", ""), "new_password": form.get("new_password", "")}
    result = await page.api.post("/users/me/password", body)
    return page.redirect("/account?" + ("notice=saved" if result.ok else "error=" + result.error))


@router.post("/account/sessions/{session_id}/revoke")
async def account_revoke(request: Request, session_id: str) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    result = await page.api.call("DELETE", f"/users/me/sessions/{session_id}")
    return page.redirect("/account?" + ("notice=saved" if result.ok else "error=" + result.error))


@router.post("/account/avatar")
async def account_avatar(request: Request) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return page.redirect("/account?error=choose an image")
    data = await upload.read()
    files = {"file": (upload.filename or "avatar", data, upload.content_type or "application/octet-stream")}
    result = await page.api.call("PUT", "/users/me/avatar", files=files)
    return page.redirect("/account?" + ("notice=saved" if result.ok else "error=" + result.error))


@router.post("/account/2fa/{step}")
async def account_two_factor(request: Request, step: str) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    if step == "setup":
        result = await page.api.post("/users/me/2fa/setup")
        if not result.ok:
            return page.redirect("/account?error=" + result.error)
        return page.render("account_2fa.html", setup=result.data, codes=None, error=None)
    if step == "confirm":
        result = await page.api.post("/users/me/2fa/confirm", {"otp": str(form.get("otp") or "")})
        if not result.ok:
            setup = {"secret": form.get("secret", ""), "otpauth_uri": ""}
            return page.render("account_2fa.html", status=result.status, setup=setup, codes=None, error=result.error)
        return page.render("account_2fa.html", setup=None, codes=result.data.get("recovery_codes", []), error=None)
    if step == "disable":
        body = {"password": str(form.get("password") or ""), "otp": str(form.get("otp") or "")}
        result = await page.api.post("/users/me/2fa/disable", body)
        return page.redirect("/account?" + ("notice=saved" if result.ok else "error=" + result.error))
    return page.render("error.html", status=404, message=page.t("error.not_found"))


# --- creator studio -------------------------------------------------------------------------


@router.get("/studio", response_class=HTMLResponse)
async def studio(request: Request) -> Response:
    page = await page_of(request)
    if page.me is None:
        return _need_sign_in(page)
    if not page.has_role("creator", "admin"):
        return page.render("error.html", status=403, message=page.t("studio.not_creator"))
    streams = await page.api.get("/streams", owner=str(page.me["id"]), limit=50)
    cats = await page.api.get("/categories")
    return page.render(
        "studio.html",
        streams=streams.data.get("items", []) if streams.ok else [],
        categories=cats.data.get("items", []) if cats.ok else [],
        error=request.query_params.get("error") or (None if streams.ok else streams.error),
    )


@router.post("/studio/streams")
async def studio_create(request: Request) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    body: dict[str, Any] = {"title": str(form.get("title", ""))}
    if form.get("category"):
        body["category"] = str(form["category"])
    if form.get("audio_only"):
        body["audio_only"] = True
    created = await page.api.post("/streams", body)
    if not created.ok:
        return page.redirect("/studio?error=" + created.error)
    return await _studio_stream(page, str(created.data["id"]), stream_key=str(created.data["stream_key"]))


async def _studio_stream(
    page: Page, stream_id: str, stream_key: str | None = None, error: str | None = None
) -> Response:
    stream = await page.api.get(f"/streams/{stream_id}")
    if not stream.ok:
        return page.render("error.html", status=stream.status, message=stream.error)
    modes = await page.api.get(f"/streams/{stream_id}/chat/modes")
    bans = await page.api.get(f"/streams/{stream_id}/chat/bans")
    board = await page.api.get(f"/streams/{stream_id}/gifts/leaderboard")
    host = page.request.url.hostname or "127.0.0.1"
    return page.render(
        "studio_stream.html",
        stream=stream.data,
        stream_key=stream_key,
        modes=modes.data if modes.ok else {},
        bans=bans.data.get("items", []) if bans.ok else [],
        leaderboard=board.data.get("items", []) if board.ok else [],
        ingest_url=f"rtmp://{host}/live",
        error=error or page.request.query_params.get("error"),
    )


@router.get("/studio/streams/{stream_id}", response_class=HTMLResponse)
async def studio_stream(request: Request, stream_id: str) -> Response:
    page = await page_of(request)
    if page.me is None:
        return _need_sign_in(page)
    return await _studio_stream(page, stream_id)


@router.post("/studio/streams/{stream_id}/{action}")
async def studio_action(request: Request, stream_id: str, action: str) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    if action == "rotate":
        rotated = await page.api.post(f"/streams/{stream_id}/key/rotate")
        if not rotated.ok:
            return await _studio_stream(page, stream_id, error=rotated.error)
        return await _studio_stream(page, stream_id, stream_key=str(rotated.data["stream_key"]))
    if action in ("start", "end"):
        result = await page.api.post(f"/streams/{stream_id}/{action}")
    elif action == "modes":
        body = {
            "slow_mode_seconds": int(str(form.get("slow_mode_seconds") or 0) or 0),
            "followers_only_minutes": int(str(form.get("followers_only_minutes") or -1) or -1)
            if form.get("followers_only")
            else None,
            "emote_only": bool(form.get("emote_only")),
        }
        result = await page.api.call("PATCH", f"/streams/{stream_id}/chat/modes", json=body)
    elif action == "ban":
        result = await page.api.post(
            f"/streams/{stream_id}/chat/bans", {"user_id": form.get("user_id"), "reason": form.get("reason") or None}
        )
    else:
        return page.render("error.html", status=404, message=page.t("error.not_found"))
    suffix = "" if result.ok else "?error=" + result.error
    return page.redirect(f"/studio/streams/{stream_id}{suffix}")


# --- admin ----------------------------------------------------------------------------------


@router.get("/admin", response_class=HTMLResponse)
async def admin_home(request: Request) -> Response:
    page = await page_of(request)
    if page.me is None:
        return _need_sign_in(page)
    if not page.has_role("admin", "moderator"):
        return page.render("error.html", status=403, message=page.t("error.title"))
    if page.has_role("admin") and not page.me.get("two_factor_enabled") and page.runtime.settings.env == "production":
        return page.render("error.html", status=403, message=page.t("admin.twofa_required"))
    q = request.query_params.get("q") or None
    users = await page.api.get("/admin/users", q=q, limit=50)
    audit = await page.api.get("/admin/audit-log", limit=30)
    is_admin = page.has_role("admin")
    recon = await page.api.get("/admin/ledger/reconciliation") if is_admin else None
    packages = await page.api.get("/admin/coin-packages") if is_admin else None
    gifts = await page.api.get("/admin/gifts") if is_admin else None
    categories = await page.api.get("/categories")
    return page.render(
        "admin.html",
        users=users.data.get("items", []) if users.ok else [],
        audit=audit.data.get("items", []) if audit.ok else [],
        recon=recon.data if recon is not None and recon.ok else None,
        packages=packages.data.get("items", []) if packages is not None and packages.ok else [],
        gifts=gifts.data.get("items", []) if gifts is not None and gifts.ok else [],
        categories=categories.data.get("items", []) if categories.ok else [],
        q=q or "",
        notice=request.query_params.get("notice"),
        error=request.query_params.get("error"),
    )


@router.post("/admin/users/{user_id}/{action}")
async def admin_user_action(request: Request, user_id: str, action: str) -> Response:
    page = await page_of(request)
    form = await page.form()
    if form is None:
        return _csrf_failed(page)
    if page.me is None:
        return _need_sign_in(page)
    reason = str(form.get("reason") or "")
    if action == "ban":
        result = await page.api.post(f"/admin/users/{user_id}/ban", {"reason": reason})
    elif action == "suspend":
        result = await page.api.post(f"/admin/users/{user_id}/suspend", {"reason": reason, "until": form.get("until")})
    elif action == "reinstate":
        result = await page.api.post(f"/admin/users/{user_id}/reinstate", {"reason": reason})
    else:
        return page.render("error.html", status=404, message=page.t("error.not_found"))
    return page.redirect("/admin?" + ("notice=done" if result.ok else "error=" + result.error))
