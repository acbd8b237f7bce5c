"""Fixtures and helpers of the accounts tests: a real SMTP server (aiosmtpd) on a free port, an app
that mails through it, and small API helpers."""

from __future__ import annotations

import asyncio
import queue
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote

import httpx
import pyotp
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from halobuzz.accounts.models import User
from halobuzz.app import HaloBuzzApp
from halobuzz.core.audit import AuditLog
from tests.conftest import PASSWORD

API = "/api/v1"
SESSIONS = f"{API}/users/me/sessions"


@dataclass
class SmtpServer:
    """A local SMTP server; every message it accepts lands in ``inbox``."""

    port: int
    inbox: queue.Queue[EmailMessage] = field(default_factory=queue.Queue)

    async def next_message(self, timeout: float = 10.0) -> EmailMessage:
        """The next message received, waiting up to ``timeout`` seconds for it."""
        return await asyncio.to_thread(self.inbox.get, True, timeout)


class _Inbox:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.server.inbox.put(message)
        return "250 OK"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(port=free_port())
    controller = Controller(_Inbox(server), hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
async def mail_app(app_factory: Callable[..., Awaitable[HaloBuzzApp]], smtp_server: SmtpServer) -> HaloBuzzApp:
    """An app whose mails go to ``smtp_server``."""
    return await app_factory(
        mail={"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port},
        auth={"public_url": "https://halobuzz.example"},
    )


def link_token(text: str, page: str) -> str:
    """The token of the ``{public_url}/{page}?token=…`` link in a mail body."""
    match = re.search(rf"https?://\S+/{page}\?token=([A-Za-z0-9_\-%]+)", text)
    assert match, text
    return unquote(match.group(1))


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition that a background task makes true (polling, bounded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def new_name() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


async def register(client: httpx.AsyncClient, username: str | None = None, **fields: Any) -> httpx.Response:
    username = username or new_name()
    body = {"username": username, "email": f"{username.lower()}@example.com", "password": PASSWORD, **fields}
    return await client.post(f"{API}/auth/register", json=body)


async def login(client: httpx.AsyncClient, login_: str, password: str = PASSWORD, **fields: Any) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"login": login_, "password": password, **fields})


async def signed_up(client: httpx.AsyncClient, username: str | None = None) -> tuple[str, dict[str, Any]]:
    """Register and sign in; returns (username, token pair)."""
    username = username or new_name()
    r = await register(client, username)
    assert r.status_code == 201, r.text
    r = await login(client, username)
    assert r.status_code == 200, r.text
    return username, r.json()


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def stored_user(app: HaloBuzzApp, username: str) -> User:
    async with app.runtime.db.session(write=False) as s:
        return (await s.execute(select(User).where(User.username_key == username.lower()))).scalar_one()


async def audit_rows(app: HaloBuzzApp, **filters: Any) -> list[AuditLog]:
    async with app.runtime.db.session(write=False) as s:
        query = select(AuditLog).order_by(AuditLog.created_at)
        for name, value in filters.items():
            query = query.where(getattr(AuditLog, name) == value)
        return list((await s.execute(query)).scalars())


def otp_at(secret: str, steps_ahead: int = 0) -> str:
    """The TOTP code of the current 30-second step (or one ``steps_ahead``)."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(int(time.time()) // totp.interval + steps_ahead)
