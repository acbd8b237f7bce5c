"""The official JavaScript client (npm ``socket.io-client`` v4, run by Node) against a real server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from halobuzz.config import RealtimeSettings
from tests.realtime.support import create_stream, joined

JS_DIR = Path(__file__).parent / "js"
CLIENT_PACKAGE = JS_DIR / "node_modules" / "socket.io-client" / "package.json"
INSTALL_SECONDS = 150  # within the per-test timeout (pytest-timeout, 180 s)
RUN_SECONDS = 60


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed for the JavaScript client test: install Node 18+ (`node` on PATH)")
    return node


def _install(request: pytest.FixtureRequest) -> None:
    """``npm ci`` the pinned client into tests/realtime/js/node_modules, showing npm's progress."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"npm is needed to install socket.io-client into {JS_DIR}: install Node.js with npm")
    command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=http"]
    capture = request.config.pluginmanager.getplugin("capturemanager")
    lines: list[str] = []
    with capture.global_and_fixture_disabled():  # type: ignore[union-attr]
        sys.stderr.write(
            f"\ninstalling socket.io-client for the JavaScript client test: {' '.join(command)} in {JS_DIR}\n"
        )
        process = subprocess.Popen(command, cwd=JS_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def relay() -> None:  # npm's progress, line by line, as it comes
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip())
                sys.stderr.write(f"  npm: {line}")

        reader = threading.Thread(target=relay, daemon=True)
        reader.start()
        try:
            process.wait(timeout=INSTALL_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(
                f"`npm ci` in {JS_DIR} took over {INSTALL_SECONDS} s (is the npm registry reachable?); "
                "last output:\n" + "\n".join(lines[-20:])
            )
        reader.join(timeout=5)
    if process.returncode != 0 or not CLIENT_PACKAGE.exists():
        pytest.fail(
            f"`npm ci` in {JS_DIR} failed (exit {process.returncode}); run it there by hand to see why. "
            "Last output:\n" + "\n".join(lines[-20:])
        )


@pytest.fixture(scope="module")
def js_client(request: pytest.FixtureRequest) -> list[str]:
    """The command that runs tests/realtime/js/client.mjs (installing the client when missing)."""
    node = _node()
    if not CLIENT_PACKAGE.exists():
        _install(request)
    version = json.loads(CLIENT_PACKAGE.read_text())["version"]
    assert version.startswith("4."), f"socket.io-client {version} installed; the test expects v4"
    return [node, str(JS_DIR / "client.mjs")]


async def _run(command: list[str]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=JS_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=RUN_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"the Node client did not finish within {RUN_SECONDS} s")
    text = stdout.decode().strip()
    assert text, f"the Node client printed nothing (exit {process.returncode}); stderr:\n{stderr.decode()}"
    result: dict[str, Any] = json.loads(text.splitlines()[-1])
    assert process.returncode == 0 and "error" not in result, (result, stderr.decode())
    return result


async def test_the_official_js_client_joins_sends_and_receives(live, sockets, make_user, js_client):
    server = await live()
    owner, fan = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(server, owner, go_live=True)
    python = sockets()
    await python.connect(server, owner.access_token)
    await joined(python, stream_id)
    before = await python.call("send_message", {"stream_id": stream_id, "text": "welcome, js"})
    assert before["ok"] is True

    result = await _run([*js_client, server.url, fan.access_token, stream_id, "hello from node"])

    acks = result["acks"]
    join = acks["join"]
    assert set(join) == {"ok", "epoch", "last_seq", "recovered", "messages"}
    assert join["ok"] is True and join["recovered"] is False and join["last_seq"] == 1
    assert [m["text"] for m in join["messages"]] == ["welcome, js"]
    assert join["messages"][0] == before["message"]
    assert acks["bad_join"]["ok"] is False and acks["bad_join"]["error"]["code"] == "invalid_input"
    send = acks["send"]
    assert send["ok"] is True and set(send) == {"ok", "message"}
    message = send["message"]
    assert message["text"] == "hello from node" and message["seq"] == 2 and message["epoch"] == join["epoch"]
    assert message["user"] == {"id": str(fan.id), "username": fan.username}
    received = [data for name, data in result["events"] if name == "new_message"]
    assert received == [message]
    assert result["transport"] == "websocket"
    # The Python client in the same room got the message the Node client sent.
    got = await python.wait_for("new_message", lambda m: m["text"] == "hello from node")
    assert got == message


async def test_the_official_js_client_keeps_its_connection_through_heartbeats(live, make_user, js_client):
    # Short heartbeats (the client gives up after pingInterval + pingTimeout without a ping).
    server = await live(realtime=RealtimeSettings(ping_interval_seconds=1, ping_timeout_seconds=2))
    owner, fan = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(server, owner, go_live=True)
    direct = server.gateway.pinger.sent_direct

    result = await _run([*js_client, server.url, fan.access_token, stream_id, "still here", "3"])

    assert result["transport"] == "websocket" and result["pings"] >= 3
    assert result["connected"] is True and result["acks"]["after_pings"] == {"ok": True}
    # Those pings took the direct path (written to the idle websocket, answered inline).
    assert server.gateway.pinger.sent_direct - direct >= 3
