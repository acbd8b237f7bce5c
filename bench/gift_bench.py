"""Gift sends per second on PostgreSQL through the real HTTP API, then ``verify_ledger``.

One HaloBuzz server (uvicorn, pinned to core 0) and 50 concurrent senders (this process, pinned
to core 1), each sending 1-coin gifts with fresh Idempotency-Keys to one live stream for the
duration. Afterwards the ledger is verified and the coins are counted: every 200 answer must be
exactly one posted gift.

    .venv/bin/python bench/gift_bench.py [--duration 10] [--senders 50] [--write docs/benchmarks.md]
        [--profile /tmp/gift-server.prof]   # the server under cProfile (figures then not comparable)

``JOBS_IN_PROCESS=false`` in the environment runs the server without the outbox relay and consumers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import BIN, PG_ADMIN, ROOT, Server, call, free_port, log, psql

SECTION = "## Gifts — `bench/gift_bench.py`"
TABLE_HEADER = "| date | commit | senders | seconds | gifts/s | p50 ms | p99 ms | errors | ledger ok |"
COINS_EACH = 10_000_000
# `halobuzz serve` under cProfile; SIGUSR1 writes the stats to argv[1] and ends the process.
PROFILED_SERVER = """
import cProfile, os, signal, sys
out = sys.argv[1]
profile = cProfile.Profile()
def dump(*_):
    profile.disable()
    profile.dump_stats(out)
    os._exit(0)
signal.signal(signal.SIGUSR1, dump)
sys.argv = ["halobuzz", "serve", "--no-migrate"]
from halobuzz.cli import main
profile.enable()
main()
"""


def _create_schema(env: dict[str, str]) -> None:
    code = (
        "import asyncio\n"
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        "from halobuzz import models\n"
        "async def main():\n"
        "    e = create_async_engine(__import__('os').environ['DATABASE_URL'])\n"
        "    async with e.begin() as c:\n"
        "        await c.run_sync(models.Base.metadata.create_all)\n"
        "    await e.dispose()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)


def _grant_and_verify(env: dict[str, str], user_ids: list[str] | None) -> dict[str, object]:
    """Give the senders coins (a promotion posting), or (None) verify the ledger and count gifts."""
    code = (
        "import asyncio, json, os, sys, uuid\n"
        "from sqlalchemy import func, select\n"
        "from halobuzz import models  # noqa: F401\nfrom halobuzz.core.db import Database\n"
        "from halobuzz.economy import ledger\n"
        "from halobuzz.economy.models import GiftSent, LedgerTransaction\n"
        "async def main():\n"
        "    db = Database(os.environ['DATABASE_URL'])\n"
        "    ids = json.loads(sys.argv[1])\n"
        "    out = {}\n"
        "    if ids:\n"
        "        async with db.session() as s:\n"
        "            for i in ids:\n"
        f"                await ledger.post_transaction(session=s, kind='promotion', legs=[ledger.Leg(ledger.platform('platform_promotions'), -{COINS_EACH}), ledger.Leg(ledger.user_coins(uuid.UUID(i)), {COINS_EACH})])\n"
        "    else:\n"
        "        async with db.session(write=False) as s:\n"
        "            r = await ledger.verify_ledger(s)\n"
        "            out = {'ok': r.ok, 'transactions': r.transactions_checked,\n"
        "                   'gifts': int(await s.scalar(select(func.count()).select_from(GiftSent)) or 0),\n"
        "                   'gift_transactions': int(await s.scalar(select(func.count()).select_from(LedgerTransaction).where(LedgerTransaction.kind == 'gift')) or 0)}\n"
        "    await db.dispose()\n"
        "    print(json.dumps(out))\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(user_ids or [])], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def _load(base: str, tokens: list[str], stream_id: str, gift_id: str, seconds: float) -> dict[str, object]:
    latencies: list[float] = []
    errors: dict[int, int] = {}
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def sender(token: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            body = {"gift_id": gift_id, "quantity": 1}
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = await client.post(
                    f"/api/v1/streams/{stream_id}/gifts",
                    json=body,
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                )
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[r.status_code] = errors.get(r.status_code, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(sender(t) for t in tokens))
        elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else 0.0

    return {
        "sent": len(latencies),
        "seconds": round(elapsed, 1),
        "gifts_per_s": round(len(latencies) / elapsed),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "errors": errors,
    }


def write_section(path: Path, row: str) -> None:
    """Append ``row`` to the Gifts table, creating the section at the end when missing."""
    text = path.read_text()
    if SECTION not in text:
        text = text.rstrip("\n") + (
            f"\n\n{SECTION}\n\n50 concurrent senders (core 1) post 1-coin gifts with fresh Idempotency-Keys to one\n"
            "live stream through `POST /api/v1/streams/{id}/gifts` on one uvicorn server (core 0), PostgreSQL;\n"
            "afterwards `verify_ledger` must pass and every 200 answer must be one gift posted.\n\n"
            f"{TABLE_HEADER}\n|---|---|---|---|---|---|---|---|---|\n"
        )
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(TABLE_HEADER))
    end = start
    while end + 1 < len(lines) and lines[end + 1].startswith("|"):
        end += 1
    lines.insert(end + 1, row)
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--senders", type=int, default=50)
    ap.add_argument("--write", type=Path)
    ap.add_argument("--profile", type=Path, help="run the server under cProfile and write its stats here")
    args = ap.parse_args()
    db = f"hb_bench_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE DATABASE "{db}"')
    tmp = Path(tempfile.mkdtemp(prefix="hb-gift-bench-"))
    server: Server | None = None
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + f"/{db}",
            "HALOBUZZ_DATA_DIR": str(tmp / "var"),
            "HALOBUZZ_PORT": str(port),
            "RATE_LIMIT_ENABLED": "false",
            "HALOBUZZ_LOG_LEVEL": "WARNING",
            "FRAUD_GIFTS_PER_MINUTE": "100000000",
            "FRAUD_GIFT_COINS_PER_MINUTE": "100000000",
        }
        env.pop("REDIS_URL", None)
        log(f"creating the schema in {db} …")
        _create_schema(env)
        log("starting HaloBuzz on core 0 …")
        serve = [str(BIN / "halobuzz"), "serve", "--no-migrate"]
        if args.profile:
            serve = [sys.executable, "-c", PROFILED_SERVER, str(args.profile.resolve())]
        server = Server(serve, env, base + "/healthz")
        os.sched_setaffinity(0, {1})
        password = "bench-Password-2026"

        def account(name: str) -> str:
            call(
                base,
                "POST",
                "/api/v1/auth/register",
                {"username": name, "email": f"{name}@example.com", "password": password},
            )
            return str(call(base, "POST", "/api/v1/auth/login", {"login": name, "password": password})["access_token"])

        log(f"creating 1 creator, 1 admin and {args.senders} senders through the API …")
        creator = account("giftcreator")
        call(base, "POST", "/api/v1/users/me/creator", {}, creator)
        creator = str(
            call(base, "POST", "/api/v1/auth/login", {"login": "giftcreator", "password": password})["access_token"]
        )
        stream_id = call(base, "POST", "/api/v1/streams", {"title": "Gift bench", "language": "en"}, creator)["id"]
        call(base, "POST", f"/api/v1/streams/{stream_id}/start", {}, creator)
        tokens = [account(f"giftsender{i}") for i in range(args.senders)]
        ids = [str(call(base, "GET", "/api/v1/users/me", token=t)["id"]) for t in tokens]
        _grant_and_verify(env, ids)
        admin_env = {**env}
        subprocess.run(
            [
                str(BIN / "halobuzz"),
                "createadmin",
                "--username",
                "giftadmin",
                "--email",
                "giftadmin@example.com",
                "--password",
                password,
            ],
            env=admin_env,
            check=False,
            capture_output=True,
        )
        admin = str(
            call(base, "POST", "/api/v1/auth/login", {"login": "giftadmin", "password": password})["access_token"]
        )
        gift_id = call(base, "POST", "/api/v1/admin/gifts", {"name": "bench-heart", "coin_price": 1}, admin)["id"]

        log("warm-up 3 s …")
        asyncio.run(_load(base, tokens, stream_id, gift_id, 3))
        log(f"measuring {args.duration:.0f} s with {args.senders} senders …")
        result = asyncio.run(_load(base, tokens, stream_id, gift_id, args.duration))
        check = _grant_and_verify(env, None)
        log(f"  {result}  ledger {check}")
        summary = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
            **result,
            "ledger_ok": bool(check["ok"]) and check["gifts"] == check["gift_transactions"],
            "ledger": check,
        }
        print(json.dumps(summary, indent=2))
        if args.write:
            errors = sum(dict(result["errors"]).values())  # type: ignore[call-overload]
            write_section(
                args.write,
                f"| {summary['date']} | {summary['commit']} | {args.senders} | {result['seconds']} | "
                f"{result['gifts_per_s']} | {result['p50_ms']} | {result['p99_ms']} | {errors} | "
                f"{'yes' if summary['ledger_ok'] else 'NO'} |",
            )
        return 0 if summary["ledger_ok"] else 1
    finally:
        if server is not None:
            if args.profile and server.proc.poll() is None:
                server.proc.send_signal(signal.SIGUSR1)  # the profiled server writes its stats and exits
                server.proc.wait(60)
            server.stop()
        psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
