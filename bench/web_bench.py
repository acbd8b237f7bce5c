"""Web page throughput on PostgreSQL, as ratios to the API read the home page is built from.

One ``halobuzz serve`` (core 0) and wrk (core 1). Each page is compared with
``GET /api/v1/streams/live?limit=24`` measured in the same run: a page calls the API in process
(the same routes, validation and errors), then renders a template, so the ratio shows what that
layer costs. Pages measured: the home page signed out and signed in (the signed-in page adds the
``/users/me`` read and a fresh page token), and a live stream's page signed in (seven API reads).

    .venv/bin/python bench/web_bench.py [--duration 10] [--connections 32] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import BIN, PG_ADMIN, ROOT, Server, call, free_port, log, psql, wrk

SECTION_HEADER = "| date | commit | API live req/s |"


def _sign_in(base: str, login: str, password: str) -> str:
    """The ``Cookie`` header of a browser signed in through the sign-in form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base + "/login") as r:
        token = re.search(r'name="csrf_token" value="([^"]+)"', r.read().decode()).group(1)  # type: ignore[union-attr]
    data = urllib.parse.urlencode({"csrf_token": token, "login": login, "password": password}).encode()
    opener.open(urllib.request.Request(base + "/login", data=data, method="POST")).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def _write_row(path: Path, row: str) -> None:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(SECTION_HEADER))
    end = start
    while end + 1 < len(lines) and lines[end + 1].startswith("|"):
        end += 1
    lines.insert(end + 1, row)
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--write", type=Path, help="add the results to this markdown file")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        log("installing wrk (apt) …")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)

    db = f"hb_webbench_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE DATABASE "{db}"')
    tmp = Path(tempfile.mkdtemp(prefix="hb-webbench-"))
    server = None
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
            "MEDIA_ENABLED": "false",
        }
        env.pop("REDIS_URL", None)
        log(f"migrating and seeding {db} …")
        subprocess.run([str(BIN / "halobuzz"), "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([str(BIN / "halobuzz"), "seed", "--no-demo"], env=env, check=True, capture_output=True)
        log("starting HaloBuzz on core 0 …")
        server = Server([str(BIN / "halobuzz"), "serve", "--no-migrate"], env, base + "/healthz")

        log("creating data through the API: 1 creator with 20 live streams, 1 viewer …")
        password = "bench-Password-2026"
        tokens = {}
        for name in ("webcreator", "webviewer"):
            call(
                base,
                "POST",
                "/api/v1/auth/register",
                {"username": name, "email": f"{name}@example.com", "password": password},
            )
            tokens[name] = call(base, "POST", "/api/v1/auth/login", {"login": name, "password": password})[
                "access_token"
            ]
        call(base, "POST", "/api/v1/users/me/creator", {}, tokens["webcreator"])
        creator = call(base, "POST", "/api/v1/auth/login", {"login": "webcreator", "password": password})[
            "access_token"
        ]
        stream_ids = []
        for i in range(20):
            sid = call(base, "POST", "/api/v1/streams", {"title": f"Bench stream {i}", "language": "en"}, creator)["id"]
            call(base, "POST", f"/api/v1/streams/{sid}/start", {}, creator)
            stream_ids.append(sid)
        cookie = [f"Cookie: {_sign_in(base, 'webviewer', password)}"]

        runs = (
            ("warm-up", base + "/", None),
            ("api_live", base + "/api/v1/streams/live?limit=24", None),
            ("home_anonymous", base + "/", None),
            ("home_signed_in", base + "/", cookie),
            ("stream_page", base + f"/streams/{stream_ids[0]}", cookie),
            ("api_live_again", base + "/api/v1/streams/live?limit=24", None),
        )
        results: dict[str, dict[str, float]] = {}
        for label, url, headers in runs:
            log(f"wrk {label}: {args.duration} s, {args.connections} connections …")
            results[label] = wrk(url, 3 if label == "warm-up" else args.duration, args.connections, headers)
            log(f"  {results[label]}")
        ref = (results["api_live"]["rps"] + results["api_live_again"]["rps"]) / 2
        summary = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
            "api_live_rps": round(ref),
            **{
                f"{k}_{m}": (
                    round(results[k]["rps"])
                    if m == "rps"
                    else round(results[k]["rps"] / ref, 3)
                    if m == "ratio"
                    else results[k]["p99_ms"]
                )
                for k in ("home_anonymous", "home_signed_in", "stream_page")
                for m in ("rps", "ratio", "p99_ms")
            },
            "errors": sum(int(r["errors"]) for r in results.values()),
        }
        print(json.dumps(summary, indent=2))
        if args.write:
            cells = " | ".join(
                f"{summary[f'{k}_rps']} ({summary[f'{k}_ratio']:.0%}, p99 {summary[f'{k}_p99_ms']:.1f} ms)"
                for k in ("home_anonymous", "home_signed_in", "stream_page")
            )
            _write_row(
                args.write,
                f"| {summary['date']} | {summary['commit']} | {summary['api_live_rps']} | {cells} | {summary['errors']} |",
            )
        return 0 if summary["errors"] == 0 else 1
    finally:
        if server is not None:
            server.stop()
        psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
