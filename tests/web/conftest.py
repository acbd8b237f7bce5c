"""Helpers for the web app tests: the default catalog, CSRF tokens out of pages, and browsers
signed in through the sign-in form (the same cookie session a person gets)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pyotp
import pytest

from halobuzz.app import HaloBuzzApp
from halobuzz.core.clock import utcnow
from halobuzz.economy.service import ensure_default_catalog
from tests.conftest import client_for
from tests.payments.conftest import fake_provider, payments_app

__all__ = ["fake_provider", "payments_app"]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery 9"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture(autouse=True)
async def catalog(app: HaloBuzzApp) -> None:
    """The default coin packages and gifts, as ``halobuzz seed`` creates them."""
    async with app.runtime.db.session() as session:
        await ensure_default_catalog(session)


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:500]
    return match.group(1)


def alert_of(html: str) -> str:
    """The text of the page's error message (``role="alert"``)."""
    match = re.search(r'role="alert"[^>]*>([^<]*)<', html)
    assert match, html[-2000:]
    return match.group(1)


async def submit(c: httpx.AsyncClient, page_url: str, action: str, **data: Any) -> httpx.Response:
    """Open ``page_url`` and post a form to ``action`` with the page's CSRF token."""
    page = await c.get(page_url)
    assert page.status_code == 200, (page_url, page.status_code, page.text[-1500:])
    return await c.post(action, data={"csrf_token": csrf_of(page.text), **data})


async def sign_up(c: httpx.AsyncClient, username: str) -> None:
    response = await submit(
        c, "/signup", "/signup", username=username, email=f"{username}@example.com", password=PASSWORD
    )
    assert response.status_code == 303, response.text
    assert "hb_session" in response.headers.get("set-cookie", "")


async def sign_in(c: httpx.AsyncClient, login: str, password: str, otp: str | None = None) -> httpx.Response:
    data = {"login": login, "password": password, **({"otp": otp} if otp else {})}
    return await submit(c, "/login", "/login", **data)


@pytest.fixture
async def browser_for(app: HaloBuzzApp) -> AsyncIterator[Callable[..., Any]]:
    """httpx clients signed in as a test user through the page form; closed at the end."""
    opened: list[httpx.AsyncClient] = []

    async def open_as(user: Any, otp: str | None = None) -> httpx.AsyncClient:
        client = client_for(app)
        opened.append(client)
        response = await sign_in(client, user.username, user.password, otp)
        assert response.status_code == 303, response.text[-1500:]
        return client

    yield open_as
    for client in opened:
        await client.aclose()


@pytest.fixture
def make_admin(make_user: Callable[..., Any]) -> Callable[..., Any]:
    """An admin with two-factor authentication on (as the admin panel requires)."""

    async def create(username: str | None = None) -> Any:
        return await make_user(username, roles=["admin"], totp_secret=TOTP_SECRET, totp_enabled_at=utcnow())

    return create


@pytest.fixture
async def admin_web(make_admin: Callable[..., Any], browser_for: Callable[..., Any]) -> httpx.AsyncClient:
    admin = await make_admin()
    client: httpx.AsyncClient = await browser_for(admin, pyotp.TOTP(TOTP_SECRET).now())
    client.user = admin  # type: ignore[attr-defined]
    return client
