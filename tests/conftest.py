"""Test fixtures: a real database per test session (SQLite by default; PostgreSQL when
``DATABASE_URL`` is set), Redis with a per-test key prefix when ``REDIS_URL`` is set, an app per
test talking through httpx's ASGI transport, and factories for users.

CI runs the whole suite twice: with DATABASE_URL/REDIS_URL pointing at PostgreSQL and Redis, and
without them (embedded default). When they are set and unreachable, tests fail; they never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from halobuzz import models
from halobuzz.accounts import auth
from halobuzz.accounts.models import User
from halobuzz.app import HaloBuzzApp, create_app
from halobuzz.config import AuthSettings, HttpSettings, MailSettings, RateLimitSettings, S3Settings, Settings

PASSWORD = "Correct-Horse-9-Battery"

TEST_DATABASE_URL = os.environ.get("DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("REDIS_URL") or None


def pytest_report_header(config: pytest.Config) -> str:
    return f"halobuzz backends: database={'postgresql' if TEST_DATABASE_URL else 'sqlite'} redis={'yes' if TEST_REDIS_URL else 'no'}"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A fresh database for this test session, with every table created; dropped afterwards."""
    if TEST_DATABASE_URL:
        base = make_url(TEST_DATABASE_URL)
        name = f"hb_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin = create_async_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(models.Base.metadata.create_all)
    await engine.dispose()
    yield url
    if TEST_DATABASE_URL:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _truncate_all(url: str) -> None:
    # SQLite: wait for a straggling background write of the app just stopped (a gateway task that
    # outlived its shutdown's grace) instead of failing after sqlite3's default 5 s.
    engine = create_async_engine(url, connect_args={"timeout": 60} if url.startswith("sqlite") else {})
    tables = list(reversed(models.Base.metadata.sorted_tables))
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(table.delete())
    await engine.dispose()


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for one test: its own data directory and Redis prefix, fast Argon2, no rate limits.

    Keyword arguments override fields; sections may be given as dicts (``auth={"...": ...}``).
    """
    prefix = f"hbt:{uuid.uuid4().hex[:12]}:"

    def build(**overrides: Any) -> Settings:
        auth_over = {
            "argon2_memory_kib": 1024,
            "argon2_time_cost": 1,
            "jwt_secret": "test-signing-key-" + "k" * 40,
            **overrides.pop("auth", {}),
        }
        rl_over = {"enabled": False, **overrides.pop("rate_limit", {})}
        # A loaded CI machine can take longer than production's 2 s to answer a readiness probe.
        http_over = {"ready_timeout_seconds": 15.0, **overrides.pop("http", {})}
        s3_over = overrides.pop("s3", {})
        mail_over = overrides.pop("mail", {})
        # Radio playout polls the database; only the tests that need it turn it on.
        media_over = {"radio_playout": False, **overrides.pop("media", {})}
        values: dict[str, Any] = {
            "env": "test",
            "data_dir": tmp_path / "var",
            "database_url": database_url,
            "redis_url": TEST_REDIS_URL,
            "redis_prefix": prefix,
            "log_format": "console",
            "auth": AuthSettings(**auth_over),
            "rate_limit": RateLimitSettings(**rl_over),
            "http": HttpSettings(**http_over),
            "s3": S3Settings(**s3_over),
            "mail": MailSettings(**mail_over),
            "media": media_over,
        }
        for key, value in overrides.items():
            values[key] = value
        return Settings(**values)

    return build


@pytest.fixture
async def app_factory(make_settings: Callable[..., Settings], database_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Start apps (lifespan included) with settings overrides; all are shut down after the test."""
    managers: list[LifespanManager] = []

    async def start(**overrides: Any) -> HaloBuzzApp:
        app = create_app(make_settings(**overrides))
        # Generous start-up/shutdown bounds: each shutdown step is bounded by the app itself, and on a
        # loaded CI machine the sum can pass asgi-lifespan's default of 5 s without anything being stuck.
        manager = LifespanManager(app, startup_timeout=60, shutdown_timeout=60)  # type: ignore[arg-type]
        await manager.__aenter__()
        managers.append(manager)
        return app

    yield start
    for manager in reversed(managers):
        await manager.__aexit__(None, None, None)
    await _truncate_all(database_url)


@pytest.fixture
async def app(app_factory: Callable[..., Any]) -> HaloBuzzApp:
    return await app_factory()  # type: ignore[no-any-return]


def client_for(app: HaloBuzzApp, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(app: HaloBuzzApp) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@dataclass
class TestUser:
    id: uuid.UUID
    username: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    roles: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@pytest.fixture
def make_user(app: HaloBuzzApp) -> Callable[..., Any]:
    """Create a user straight in the database and sign them in; returns a ``TestUser``."""

    async def create(
        username: str | None = None,
        *,
        roles: list[str] | None = None,
        password: str = PASSWORD,
        **fields: Any,
    ) -> TestUser:
        rt = app.runtime
        username = username or f"u{uuid.uuid4().hex[:12]}"
        roles = roles or ["user"]
        if "user" not in roles:
            roles = ["user", *roles]
        async with rt.db.session() as session:
            user = User(
                username=username,
                username_key=username.lower(),
                email=f"{username.lower()}@example.com",
                password_hash=rt.passwords.hash(password),
                display_name=fields.pop("display_name", username),
                roles=roles,
                creator_status="approved" if "creator" in roles else "none",
                **fields,
            )
            session.add(user)
            await session.flush()
            pair = await auth.start_session(
                session=session,
                jwt=rt.jwt,
                settings=rt.settings.auth,
                user=user,
                device="pytest",
                ip="127.0.0.1",
            )
        return TestUser(user.id, username, user.email, password, pair.access_token, pair.refresh_token, roles)

    return create


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is the one JSON error shape with this status (and code)."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"code", "message", "details", "request_id"} <= set(err), err
    assert err["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert err["code"] == code, err
    return err  # type: ignore[no-any-return]
