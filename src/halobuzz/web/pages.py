"""What every page handler shares: who is signed in, the language, CSRF, the API client,
rendering, guards, and the few value conversions forms need.

Handlers are thin: ``page = await Page.open(request)``, call the API (``page.api``), render. A
guard that fails raises ``Halt`` with the response to send (a redirect to sign in, a 403 page,
the two-factor set-up page for admins); ``@page_route`` turns it into that response.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from halobuzz.core.runtime import Runtime
from halobuzz.web import charts, i18n
from halobuzz.web.client import Api, ApiResult
from halobuzz.web.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    CookieSession,
    clear_session_cookie,
    csrf_ok,
    csrf_seed,
    csrf_token,
    decode_session,
    set_csrf_cookie,
)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))


def _when(value: object) -> str:
    """An ISO time (or datetime) as ``YYYY-MM-DD HH:MM UTC``; empty for none."""
    if not value:
        return ""
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(amount: object, currency: object = "") -> str:
    """Minor units as ``NPR 10.00`` (two decimals; every supported currency has them)."""
    try:
        minor = int(str(amount))
    except ValueError:
        return str(amount)
    sign = "-" if minor < 0 else ""
    return f"{currency} {sign}{abs(minor) // 100}.{abs(minor) % 100:02d}".strip()


def _duration(seconds: object) -> str:
    try:
        total = int(str(seconds))
    except ValueError:
        return ""
    hours, rest = divmod(max(total, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _gift_image(url: object) -> str:
    """The still image of a gift (its animation descriptor ``x.json`` sits next to ``x.svg``)."""
    text = str(url or "")
    return text[: -len(".json")] + ".svg" if text.endswith(".json") else text or "/static/favicon.svg"


class _KnownKeys:
    """``'key' in known_keys`` in templates: whether a text exists (to fall back to raw values)."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and i18n.has_key(key)


env.globals["known_keys"] = _KnownKeys()
env.filters.update(when=_when, money=_money, duration=_duration, gift_image=_gift_image)
env.globals.update(
    bar_chart=lambda *a, **k: Markup(charts.bar_chart(*a, **k)),  # noqa: S704 - the chart escapes its text
    column_chart=lambda *a, **k: Markup(charts.column_chart(*a, **k)),  # noqa: S704 - the chart escapes its text
)

# Pages load only our own scripts and styles; media and API calls stay on this origin (plus the
# storage origin when files are served from S3).
_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"],
    "media-src": ["'self'", "blob:"],
    "connect-src": ["'self'", "ws:", "wss:"],
    "worker-src": ["'self'", "blob:"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def content_security_policy(runtime: Runtime, *, form_action: Iterable[str] = ()) -> str:
    policy = {k: list(v) for k, v in _CSP.items()}
    s3 = runtime.settings.s3
    storage = _origin(s3.public_url) or _origin(s3.endpoint)
    if storage:
        for directive in ("img-src", "media-src", "connect-src"):
            policy[directive].append(storage)
    policy["form-action"].extend(o for o in (_origin(u) for u in form_action) if o)
    return "; ".join(f"{k} {' '.join(v)}" for k, v in policy.items())


class Halt(Exception):
    """Stop the handler and send ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


P = ParamSpec("P")


def page_route(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Send the response of a ``Halt`` raised by the handler (guards, CSRF, missing objects)."""

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except Halt as halt:
            return halt.response

    return run


def safe_next(value: object, default: str = "/") -> str:
    """A same-site path to go back to (never another origin)."""
    text = str(value or "")
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return default
    return text


class Page:
    """One page request: who is signed in, the language, the CSRF token and the API client."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.runtime: Runtime = request.app.state.runtime
        self.cookie: CookieSession | None = decode_session(self.runtime, request.cookies.get(SESSION_COOKIE))
        self.me: dict[str, Any] | None = None
        self.unread = 0  # unread notifications (the bell)
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
        self.form_action: list[str] = []

    @classmethod
    async def open(cls, request: Request) -> Page:
        page = cls(request)
        if page.cookie is not None:
            # Who is signed in, and the unread count of the bell in the header.
            me, unread = await asyncio.gather(page.api.get("/users/me"), page.api.get("/notifications/unread-count"))
            if me.ok:
                page.me = me.data
                page.unread = int((unread.data or {}).get("unread_count") or 0) if unread.ok else 0
            else:
                page.ended, page.cookie, page.api.token = True, None, None
        q = request.query_params
        page.lang = i18n.choose(
            query=q.get("lang"),
            cookie=request.cookies.get(i18n.LANG_COOKIE),
            profile=(page.me or {}).get("language"),
            accept=request.headers.get("accept-language"),
        )
        return page

    # --- who ---------------------------------------------------------------------------------

    @property
    def user(self) -> dict[str, Any]:
        """The signed-in user (only after ``need_user``)."""
        assert self.me is not None
        return self.me

    def has_role(self, *roles: str) -> bool:
        return bool(self.me) and any(r in (self.me or {}).get("roles", []) for r in roles)

    def need_user(self) -> dict[str, Any]:
        if self.me is None:
            target = self.request.url.path
            if self.request.method == "GET" and self.request.url.query:
                target += "?" + self.request.url.query
            raise Halt(self.redirect("/login?" + urlencode({"next": target})))
        return self.me

    def need_role(self, *roles: str) -> dict[str, Any]:
        me = self.need_user()
        if not self.has_role(*roles):
            raise Halt(self.render("error.html", status=403, message=self.t("error.forbidden")))
        return me

    def need_staff(self, *, admin_only: bool = False) -> dict[str, Any]:
        """An admin (or, unless ``admin_only``, a moderator). Admins must have two-factor
        authentication on: without it they are sent to set it up first."""
        me = self.need_role("admin") if admin_only else self.need_role("admin", "moderator")
        if self.has_role("admin") and not me.get("two_factor_enabled"):
            raise Halt(self.redirect("/account/2fa?required=admin"))
        return me

    # --- language ------------------------------------------------------------------------------

    def t(self, key: str, **values: object) -> str:
        return i18n.translate(self.lang, key, **values)

    # --- responses -----------------------------------------------------------------------------

    def finish(self, response: Response) -> Response:
        response.headers["content-security-policy"] = content_security_policy(
            self.runtime, form_action=self.form_action
        )
        response.headers["cache-control"] = "no-store"
        response.headers["referrer-policy"] = "same-origin"
        if self.new_seed:
            set_csrf_cookie(self.request, response, self.seed)
        if self.ended:
            clear_session_cookie(self.request, response)
        chosen = self.request.query_params.get("lang")
        if chosen in i18n.LANGUAGES:
            response.set_cookie(i18n.LANG_COOKIE, chosen, max_age=86400 * 365, samesite="lax", path="/")
        return response

    def notice(self) -> str | None:
        """The translated notice named by ``?notice=`` (only known notices are shown)."""
        key = self.request.query_params.get("notice")
        return self.t("notice." + key) if key and i18n.has_key(f"notice.{key}") else None

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("notice", self.notice())
        context.setdefault("error", None)
        html = env.get_template(template).render(
            page=self,
            me=self.me,
            t=self.t,
            lang=self.lang,
            dir="rtl" if self.lang in i18n.RTL else "ltr",
            languages=i18n.LANGUAGES,
            csrf=self.csrf,
            csrf_field=CSRF_FIELD,
            csrf_input=self.csrf_input,
            password_min=self.runtime.settings.auth.password_min_length,
            unread=self.unread,
            path=self.request.url.path,
            **context,
        )
        return self.finish(HTMLResponse(html, status_code=status))

    def csrf_input(self) -> Markup:
        return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, self.csrf)

    def redirect(self, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303))

    def json(self, body: Any, status: int = 200) -> Response:
        return self.finish(JSONResponse(body, status_code=status))

    def fail(self, result: ApiResult) -> Halt:
        """An error page with the API's message and status."""
        status = result.status if 400 <= result.status < 600 else 502
        return Halt(self.render("error.html", status=status, message=result.error))

    def id_of(self, raw: str) -> str:
        """``raw`` when it is a UUID (an id in a page's path), else a 404 page."""
        found = uid(raw)
        if found is None:
            raise self.not_found()
        return found

    def not_found(self) -> Halt:
        return Halt(self.render("error.html", status=404, message=self.t("error.not_found")))

    def must(self, result: ApiResult) -> Any:
        """The result's data, or an error page with the API's message."""
        if not result.ok:
            raise self.fail(result)
        return result.data

    # --- forms -----------------------------------------------------------------------------------

    async def form(self) -> dict[str, Any]:
        """The submitted form; a 403 page when its CSRF token is missing or wrong."""
        data = await self.request.form()
        values: dict[str, Any] = {}
        for key, value in data.multi_items():
            if key in values:
                existing = values[key]
                values[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
            else:
                values[key] = value
        if not csrf_ok(self.runtime, self.request, str(values.get(CSRF_FIELD) or "")):
            raise Halt(self.render("error.html", status=403, message=self.t("error.csrf")))
        return values

    async def signed_form(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the form, the signed-in user) of an unsafe request; CSRF first, then sign-in."""
        form = await self.form()
        return form, self.need_user()


def items(result: ApiResult) -> list[Any]:
    """The ``items`` of a list response (empty when the call failed)."""
    if result.ok and isinstance(result.data, dict):
        return list(result.data.get("items") or [])
    if result.ok and isinstance(result.data, list):
        return list(result.data)
    return []


def next_cursor(result: ApiResult) -> str | None:
    return result.data.get("next_cursor") if result.ok and isinstance(result.data, dict) else None


def text(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def number(form: dict[str, Any], name: str) -> int | str | None:
    """An integer field: the int, ``None`` when empty, or the raw text (the API then explains)."""
    raw = text(form, name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return raw


def listed(form: dict[str, Any], name: str) -> list[str]:
    """Every value of a repeated field (checkboxes)."""
    value = form.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str)]


def uid(value: str) -> str | None:
    """``value`` when it is a UUID (path segments handed to the API)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
