"""Go-live fan-out on PostgreSQL: one ``stream.live`` to 100,000 followers with one worker.

What runs (all on 127.0.0.1, every process stopped at the end, also on error or Ctrl-C):

* a fresh database with one creator and ``--followers`` followers (written with COPY);
* ``halobuzz serve`` (the API and Socket.IO gateway, no relay) pinned to core 1, and one
  ``halobuzz worker`` (the relay, the notification consumers and dispatcher) pinned to core 0, both
  on Redis under a prefix of their own;
* ``--online`` of the followers connected as real Socket.IO clients (python-socketio, this process,
  core 1).

Measured: from just before ``POST /streams/{id}/start`` until every notification row is written
(the chunk marks add up to the follower count) and until every online follower's socket has
received its ``notification`` event. The reference, in the same run and on the same database:
single-row inserts (one ``INSERT`` statement per notification, awaited one after another in one
transaction, as a per-recipient loop would write them), as rows per second.

    .venv/bin/python bench/notify_fanout.py [--followers 100000] [--online 500] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import BIN, PG_ADMIN, ROOT, free_port, log, psql, wait_http

SECTION = "## Notification fan-out — `bench/notify_fanout.py`"
TABLE_HEADER = "| date | commit | followers | online | rows written s | pushes done s | fan-out rows/s | single-row rows/s | ratio | load |"
SECRET = "bench-jwt-secret-" + "x" * 40
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


async def _schema(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from halobuzz import models

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(models.Base.metadata.create_all)
    await engine.dispose()


async def _seed(url: str, followers: int, online: int) -> dict[str, Any]:
    """Users, follows and sign-in sessions by COPY; access tokens for the creator and the online ones."""
    from halobuzz.config import AuthSettings
    from halobuzz.core.ids import uuid7
    from halobuzz.core.security import JWTCodec

    conn = await asyncpg.connect(_dsn(url))
    now = datetime.now(UTC)
    creator = uuid7()
    ids = [uuid7() for _ in range(followers)]
    rows = []
    for i, uid in enumerate([creator, *ids]):
        name = "creator" if uid == creator else f"f{i}"
        roles = '["user", "creator"]' if uid == creator else '["user"]'
        rows.append(
            (uid, name, name, f"{name}@bench.local", "x", name, "", "en", "UTC", roles,
             "approved" if uid == creator else "none", "active", followers if uid == creator else 0,
             0 if uid == creator else 1, now, now)
        )  # fmt: skip
    await conn.copy_records_to_table(
        "user",
        records=rows,
        columns=[
            "id", "username", "username_key", "email", "password_hash", "display_name", "bio", "language",
            "timezone", "roles", "creator_status", "status", "follower_count", "following_count", "created_at",
            "updated_at",
        ],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "follow",
        records=[(uid, creator, now - timedelta(microseconds=i)) for i, uid in enumerate(ids)],
        columns=["follower_id", "followee_id", "created_at"],
    )
    signed_in = [creator, *ids[:online]]
    sessions = [(uuid7(), uid) for uid in signed_in]
    await conn.copy_records_to_table(
        "auth_session",
        records=[(sid, uid, "bench", None, now, now + timedelta(days=1), now) for sid, uid in sessions],
        columns=["id", "user_id", "device", "ip", "last_seen_at", "expires_at", "created_at"],
    )
    await conn.execute("ANALYZE")
    await conn.close()
    jwt = JWTCodec(AuthSettings(jwt_secret=SECRET, access_token_ttl_seconds=3600))
    tokens = [jwt.issue_access(user_id=uid, session_id=sid, roles=["user"])[0] for sid, uid in sessions]
    return {"creator": creator, "creator_token": tokens[0], "online_tokens": tokens[1:], "followers": ids}


async def _single_row_rate(url: str, recipients: list[uuid.UUID], count: int) -> float:
    """Rows/s of one INSERT statement per notification (the naive loop), rolled back afterwards."""
    from sqlalchemy import insert

    from halobuzz.core.db import Database
    from halobuzz.core.ids import uuid7
    from halobuzz.notifications.models import Notification

    db = Database(url, pool_size=2)
    now = datetime.now(UTC)
    data = {"stream_id": str(uuid.uuid4()), "title": "bench", "creator": {"id": "x", "username": "creator"}}
    async with db.write_engine.connect() as conn:
        tx = await conn.begin()
        began = time.perf_counter()
        for uid in recipients[:count]:
            await conn.execute(
                insert(Notification).values(
                    id=uuid7(), recipient_id=uid, type="stream_live", actor_id=None, subject_type="stream",
                    subject_id="s", data=data, dedupe_key="bench-single", created_at=now, read_at=None,
                )
            )  # fmt: skip
        elapsed = time.perf_counter() - began
        await tx.rollback()
    await db.dispose()
    return count / elapsed


def _start(cmd: list[str], env: dict[str, str], core: int, log_file: Path) -> subprocess.Popen[bytes]:
    out = log_file.open("wb")
    return subprocess.Popen(["taskset", "-c", str(core), *cmd], env=env, stdout=out, stderr=out, cwd=ROOT)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _connect(url: str, tokens: list[str]) -> tuple[list[socketio.AsyncClient], dict[int, float]]:
    clients: list[socketio.AsyncClient] = []
    arrived: dict[int, float] = {}
    for index in range(len(tokens)):
        client = socketio.AsyncClient(reconnection=False)

        def handler(data: Any, index: int = index) -> None:
            if data.get("type") == "stream_live" and index not in arrived:
                arrived[index] = time.monotonic()

        client.on("notification", handler)
        clients.append(client)
    for start in range(0, len(clients), 50):
        batch = list(zip(clients[start : start + 50], tokens[start : start + 50], strict=True))
        await asyncio.gather(
            *(c.connect(url, auth={"token": t}, transports=["websocket"], wait_timeout=30) for c, t in batch)
        )
    return clients, arrived


async def run(args: argparse.Namespace) -> dict[str, Any]:
    os.sched_setaffinity(0, {1})
    name = f"hb_bench_notify_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    prefix = f"hbbench:{uuid.uuid4().hex[:8]}:"
    work = Path(tempfile.mkdtemp(prefix="hb-notify-bench-"))
    psql(f'CREATE DATABASE "{name}"')
    api = worker = None
    clients: list[socketio.AsyncClient] = []
    try:
        await _schema(url)
        log(f"seeding {args.followers} followers ({args.online} signed in) …")
        seeded = await _seed(url, args.followers, args.online)
        log("measuring single-row inserts …")
        single = await _single_row_rate(url, seeded["followers"], args.single_rows)
        log(f"single-row inserts: {single:.0f} rows/s")

        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": prefix,
            "HALOBUZZ_ENV": "development",
            "HALOBUZZ_DATA_DIR": str(work / "var"),
            "HALOBUZZ_LOG_LEVEL": "WARNING",
            "AUTH_JWT_SECRET": SECRET,
            "AUTH_ACCESS_TOKEN_TTL_SECONDS": "3600",
            "JOBS_IN_PROCESS": "false",
            "JOBS_RELAY_POLL_SECONDS": "0.5",
            "RATE_LIMIT_ENABLED": "false",
            "MEDIA_ENABLED": "false",
        }
        api = _start(
            [str(BIN / "halobuzz"), "serve", "--no-migrate", "--no-access-log", "--port", str(port)],
            env,
            1,
            work / "api.log",
        )
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_http, base + "/healthz")
        worker = _start([str(BIN / "halobuzz"), "worker"], env, 0, work / "worker.log")
        log(f"connecting {args.online} sockets …")
        clients, arrived = await _connect(base, seeded["online_tokens"])
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            headers = {"Authorization": f"Bearer {seeded['creator_token']}"}
            stream = (await http.post("/api/v1/streams", json={"title": "Bench live"}, headers=headers)).json()
            await asyncio.sleep(2.0)  # let the worker's relay settle (LISTEN up) before the clock starts
            conn = await asyncpg.connect(_dsn(url))
            log("going live …")
            began = time.monotonic()
            r = await http.post(f"/api/v1/streams/{stream['id']}/start", headers=headers)
            r.raise_for_status()
            rows_done = pushes_done = None
            deadline = began + args.timeout
            while time.monotonic() < deadline and (rows_done is None or pushes_done is None):
                if rows_done is None:
                    written = await conn.fetchval("SELECT coalesce(sum(recipients), 0) FROM notification_fanout_chunk")
                    if written >= args.followers:
                        rows_done = time.monotonic() - began
                if pushes_done is None and len(arrived) == len(clients):
                    pushes_done = max(arrived.values()) - began
                await asyncio.sleep(0.02)
            total = await conn.fetchval("SELECT count(*) FROM notification WHERE type = 'stream_live'")
            chunks = await conn.fetchval("SELECT count(*) FROM notification_fanout_chunk")
            await conn.close()
        if rows_done is None or pushes_done is None:
            raise RuntimeError(
                f"fan-out incomplete after {args.timeout} s: {total} rows, {len(arrived)}/{len(clients)} pushes "
                f"(logs in {work})"
            )
        fanout_rate = args.followers / rows_done
        return {
            "followers": args.followers,
            "online": args.online,
            "rows_s": rows_done,
            "pushes_s": pushes_done,
            "fanout_rate": fanout_rate,
            "single_rate": single,
            "ratio": fanout_rate / single,
            "rows": int(total),
            "chunks": int(chunks),
            "load": os.getloadavg()[0],
        }
    finally:
        for client in clients:
            if client.connected:
                await client.disconnect()
        _stop(worker)
        _stop(api)
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        r = aioredis.from_url(REDIS_URL)
        async for key in r.scan_iter(match=prefix + "*"):
            await r.delete(key)
        await r.aclose()
        shutil.rmtree(work, ignore_errors=True)


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def write(path: Path, result: dict[str, Any]) -> None:
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {_commit()} | {result['followers']} | {result['online']} | "
        f"{result['rows_s']:.2f} | {result['pushes_s']:.2f} | {result['fanout_rate']:.0f} | "
        f"{result['single_rate']:.0f} | {result['ratio']:.1f}x | {result['load']:.1f} |"
    )
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(TABLE_HEADER))
    end = start + 1
    while end + 1 < len(lines) and lines[end + 1].startswith("|"):
        end += 1
    lines.insert(end + 1, row)
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=100_000)
    parser.add_argument("--online", type=int, default=500)
    parser.add_argument("--single-rows", type=int, default=5_000, help="rows of the single-row reference")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--write", type=Path, help="append the figures to this docs/benchmarks.md")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    target = "met" if result["pushes_s"] <= 5 and result["rows_s"] <= 5 and result["ratio"] >= 10 else "NOT met"
    log(
        f"{result['followers']} rows in {result['rows_s']:.2f} s, pushes to {result['online']} sockets done at "
        f"{result['pushes_s']:.2f} s; {result['fanout_rate']:.0f} rows/s vs {result['single_rate']:.0f} single-row "
        f"({result['ratio']:.1f}x); target (<= 5 s, >= 10x) {target}"
    )
    if args.write:
        write(args.write, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
