"""HTTP benchmark of the platform core on PostgreSQL, as ratios to a bare ASGI app in the same run.

Server processes are pinned to core 0 and wrk to core 1 (taskset). Each figure is compared with a
bare ASGI app that returns the same bytes, measured in this run, because this machine is shared
and absolute numbers drift.

    .venv/bin/python bench/http_bench.py [--duration 10] [--connections 64] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def log(msg: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def call(base: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw else {}


def psql(sql: str) -> None:
    url = PG_ADMIN.replace("postgresql+asyncpg", "postgresql")
    subprocess.run(["psql", url, "-qc", sql], check=True, capture_output=True)


def wrk(url: str, seconds: int, connections: int, headers: list[str] | None = None) -> dict[str, float]:
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for h in headers or []:
        cmd += ["-H", h]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    pct = {}
    for label, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        pct[label] = float(value) * factor
    return {
        "rps": rps,
        "p50_ms": pct.get("50", 0.0),
        "p99_ms": pct.get("99", 0.0),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


TABLE_HEADER = "| date | commit | bare req/s |"


def write_row(path: Path, row: str) -> None:
    """Add ``row`` at the end of the HTTP results table (other sections may follow it)."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(TABLE_HEADER))
    end = start
    while end + 1 < len(lines) and lines[end + 1].startswith("|"):
        end += 1
    lines.insert(end + 1, row)
    path.write_text("\n".join(lines) + "\n")


class Server:
    def __init__(self, cmd: list[str], env: dict[str, str], health: str) -> None:
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", *cmd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
        )
        try:
            wait_http(health)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--write", type=Path, help="append the results to this markdown file")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        log("installing wrk (apt) …")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)

    db = f"hb_bench_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE DATABASE "{db}"')
    tmp = Path(tempfile.mkdtemp(prefix="hb-bench-"))
    servers: list[Server] = []
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
        }
        env.pop("REDIS_URL", None)
        log(f"migrating {db} …")
        subprocess.run([str(BIN / "halobuzz"), "migrate"], env=env, check=True, capture_output=True)
        log("starting HaloBuzz on core 0 …")
        hb = Server([str(BIN / "halobuzz"), "serve", "--no-migrate"], env, base + "/healthz")
        servers.append(hb)

        log("creating data through the API: 1 creator with 20 live streams, 1 viewer …")
        password = "bench-Password-2026"
        users = {}
        for name in ("benchcreator", "benchviewer"):
            call(
                base,
                "POST",
                "/api/v1/auth/register",
                {"username": name, "email": f"{name}@example.com", "password": password},
            )
            users[name] = call(base, "POST", "/api/v1/auth/login", {"login": name, "password": password})[
                "access_token"
            ]
        call(base, "POST", "/api/v1/users/me/creator", {}, users["benchcreator"])
        creator_token = call(base, "POST", "/api/v1/auth/login", {"login": "benchcreator", "password": password})[
            "access_token"
        ]
        for i in range(20):
            sid = call(
                base, "POST", "/api/v1/streams", {"title": f"Bench stream {i}", "language": "en"}, creator_token
            )["id"]
            call(base, "POST", f"/api/v1/streams/{sid}/start", {}, creator_token)
        creator = call(base, "GET", "/api/v1/users/me", token=creator_token)
        viewer_token = users["benchviewer"]

        live_url = base + "/api/v1/streams/live"
        user_url = base + f"/api/v1/users/{creator['id']}"
        body_file = tmp / "live.json"
        with urllib.request.urlopen(live_url) as r:
            body_file.write_bytes(r.read())

        bare_port = free_port()
        log("starting the bare ASGI reference on core 0 …")
        bare = Server(
            [
                str(BIN / "uvicorn"),
                "bench.bare_app:app",
                "--port",
                str(bare_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            {**env, "BARE_BODY_FILE": str(body_file), "PYTHONPATH": str(ROOT)},
            f"http://127.0.0.1:{bare_port}/",
        )
        servers.append(bare)

        results: dict[str, dict[str, float]] = {}
        auth = [f"Authorization: Bearer {viewer_token}"]
        for label, url, headers in (
            ("warm-up", live_url, None),
            ("bare", f"http://127.0.0.1:{bare_port}/", None),
            ("streams_live", live_url, None),
            ("users_get", user_url, auth),
            ("bare_again", f"http://127.0.0.1:{bare_port}/", None),
        ):
            log(f"wrk {label}: {args.duration} s, {args.connections} connections …")
            results[label] = wrk(url, 3 if label == "warm-up" else args.duration, args.connections, headers)
            log(f"  {results[label]}")
        bare_rps = (results["bare"]["rps"] + results["bare_again"]["rps"]) / 2
        summary = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
            "bare_rps": round(bare_rps),
            "streams_live_rps": round(results["streams_live"]["rps"]),
            "streams_live_ratio": round(results["streams_live"]["rps"] / bare_rps, 3),
            "streams_live_p99_ms": results["streams_live"]["p99_ms"],
            "users_get_rps": round(results["users_get"]["rps"]),
            "users_get_ratio": round(results["users_get"]["rps"] / bare_rps, 3),
            "users_get_p99_ms": results["users_get"]["p99_ms"],
            "errors": sum(int(r["errors"]) for r in results.values()),
        }
        print(json.dumps(summary, indent=2))
        if args.write:
            row = (
                f"| {summary['date']} | {summary['commit']} | {summary['bare_rps']} | "
                f"{summary['streams_live_rps']} ({summary['streams_live_ratio']:.0%}, p99 {summary['streams_live_p99_ms']:.1f} ms) | "
                f"{summary['users_get_rps']} ({summary['users_get_ratio']:.0%}, p99 {summary['users_get_p99_ms']:.1f} ms) | "
                f"{summary['errors']} |"
            )
            write_row(args.write, row)
        return 0 if summary["errors"] == 0 else 1
    finally:
        for s in reversed(servers):
            s.stop()
        psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
