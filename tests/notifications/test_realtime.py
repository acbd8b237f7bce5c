"""New notifications reach their recipients' sockets at once: from the serving process, and from a
separate `halobuzz worker` process (no gateway) through Redis pub/sub."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from halobuzz.app import HaloBuzzApp
from tests.events.conftest import jobs_settings
from tests.notifications.conftest import API, notification_settings, wait_notified
from tests.realtime.support import create_stream

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.mark.no_relay
async def test_notifications_are_pushed_to_the_recipients_user_room(
    app: HaloBuzzApp, live: Any, sockets: Any, make_user: Any
) -> None:
    server = await live(jobs=jobs_settings(), notifications=notification_settings())
    creator, fan, bystander = await make_user(roles=["creator"]), await make_user(), await make_user()
    fan_socket, creator_socket, other_socket = sockets(), sockets(), sockets()
    await fan_socket.connect(server, fan.access_token)
    await creator_socket.connect(server, creator.access_token)
    await other_socket.connect(server, bystander.access_token)

    r = await server.http.post(f"{API}/users/{creator.id}/follow", headers=fan.headers)
    assert r.status_code == 200
    pushed = await creator_socket.wait_for("notification", lambda d: d["type"] == "new_follower")
    [stored] = await wait_notified(server.app, creator.id, "new_follower")
    assert pushed == {
        "id": str(stored.id),
        "type": "new_follower",
        "data": {"follower": {"id": str(fan.id), "username": fan.username}},
        "created_at": pushed["created_at"],
        "read_at": None,
    }
    assert pushed["created_at"].endswith("Z")

    stream_id = await create_stream(server, creator, go_live=True, title="Live now")
    live_push = await fan_socket.wait_for("notification", lambda d: d["type"] == "stream_live")
    assert live_push["data"]["stream_id"] == stream_id
    assert live_push["data"]["creator"] == {"id": str(creator.id), "username": creator.username}
    listed = (await server.http.get(f"{API}/notifications", headers=fan.headers)).json()
    assert [i["id"] for i in listed["items"]] == [live_push["id"]]
    assert other_socket.of("notification") == []


@pytest.fixture
async def worker_process(database_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start `halobuzz worker` processes over the test database; each is stopped afterwards."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(*, redis_prefix: str) -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": redis_prefix,
            "HALOBUZZ_ENV": "test",
            "HALOBUZZ_DATA_DIR": str(tmp_path / "worker-var"),
            "HALOBUZZ_LOG_FORMAT": "console",
            "JOBS_RELAY_POLL_SECONDS": "0.1",
            "NOTIFICATIONS_DISPATCH_POLL_SECONDS": "0.1",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "halobuzz.cli",
            "worker",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), timeout=20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest.mark.no_relay
async def test_a_worker_process_pushes_through_redis_to_a_socket_on_the_api(
    app: HaloBuzzApp, live: Any, sockets: Any, make_user: Any, worker_process: Any
) -> None:
    # The API serves sockets and runs no relay; the worker has the consumers and no gateway.
    server = await live(redis_url=REDIS_URL, notifications=notification_settings())
    await worker_process(redis_prefix=server.app.runtime.settings.redis_prefix)
    creator, fan = await make_user(roles=["creator"]), await make_user()
    creator_socket = sockets()
    await creator_socket.connect(server, creator.access_token)

    r = await server.http.post(f"{API}/users/{creator.id}/follow", headers=fan.headers)
    assert r.status_code == 200
    pushed = await creator_socket.wait_for("notification", lambda d: d["type"] == "new_follower", timeout=60)
    [stored] = await wait_notified(server.app, creator.id, "new_follower")
    assert pushed["id"] == str(stored.id)
    assert pushed["data"]["follower"]["username"] == fan.username

    fan_socket = sockets()
    await fan_socket.connect(server, fan.access_token)
    stream_id = await create_stream(server, creator, go_live=True)
    live_push = await fan_socket.wait_for("notification", lambda d: d["type"] == "stream_live", timeout=60)
    assert live_push["data"]["stream_id"] == stream_id
