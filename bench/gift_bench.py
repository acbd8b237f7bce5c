"""Gift sends per second on PostgreSQL through the real HTTP API, then ``verify_ledger``.

One HaloBuzz server (uvicorn, pinned to core 0) and wrk (``bench/gift_load.lua``, pinned to core
1) with one connection per sender, 50 by default, each request a 1-coin gift with a fresh
Idempotency-Key from the next sender's token, to one live stream for the duration. Afterwards the
ledger is verified and the gifts are counted: every 200 answer must be one posted gift (plus at
most the answers wrk drops in flight when it stops). wrk is installed with apt when missing.

    .venv/bin/python bench/gift_bench.py [--duration 10] [--senders 50] [--write docs/benchmarks.md]
        [--profile /tmp/gift-server.prof]   # the server under cProfile (figures then not comparable)

``JOBS_IN_PROCESS=false`` in the environment runs the server without the outbox relay and consumers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

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


def _load(base: str, tokens: list[str], stream_id: str, gift_id: str, seconds: float, tag: str) -> dict[str, object]:
    """wrk (core 1, one thread, one connection per sender) posting gifts for ``seconds``."""
    body = json.dumps({"gift_id": gift_id, "quantity": 1})
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{len(tokens)}", f"-d{seconds:.0f}s", "--timeout", "30s"]
    cmd += ["-s", str(ROOT / "bench" / "gift_load.lua"), base, "--", f"/api/v1/streams/{stream_id}/gifts", body]
    cmd += [f"{tag}-{uuid.uuid4().hex[:8]}", *tokens]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    elapsed = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    line = next(line for line in out.splitlines() if line.startswith("GIFTLOAD "))
    got = json.loads(line.removeprefix("GIFTLOAD "))
    statuses = {int(code): count for code, count in got["statuses"].items()}
    sent = statuses.pop(200, 0)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        statuses[0] = sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return {
        "sent": sent,
        "seconds": round(elapsed, 1),
        "gifts_per_s": round(sent / elapsed),
        "p50_ms": round(got["p50_us"] / 1000, 1),
        "p99_ms": round(got["p99_us"] / 1000, 1),
        "errors": statuses,
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
    if not shutil.which("wrk"):
        log("installing wrk (apt) …")
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update"], check=True, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
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
        warm = _load(base, tokens, stream_id, gift_id, 3, "warm")
        log(f"measuring {args.duration:.0f} s with {args.senders} senders …")
        result = _load(base, tokens, stream_id, gift_id, args.duration, "run")
        check = _grant_and_verify(env, None)
        answered = int(warm["sent"]) + int(result["sent"])  # type: ignore[call-overload]
        log(f"  {result}  ledger {check}")
        summary = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
            **result,
            # every 200 is a posted gift; wrk drops the answers still in flight when it stops (at
            # most one per connection and run), so up to that many more gifts may be posted
            "answered": answered,
            "ledger_ok": bool(check["ok"])
            and check["gifts"] == check["gift_transactions"]
            and answered <= int(check["gifts"]) <= answered + 2 * args.senders,
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
