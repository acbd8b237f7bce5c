"""Benchmark of the real-time gateway (Socket.IO), with references measured in the same run.

Servers run on core 0 and the load client on core 1 (taskset), all on 127.0.0.1. The load client
(bench/realtime/load_client.js, Node.js + ws) speaks the Engine.IO v4 / Socket.IO v5 wire protocol
directly, so one core can hold thousands of websockets. Parts:

1. Room broadcast: one room of ``--clients`` anonymous members (default 5,000); the stream's owner
   publishes with ``send_message`` (the real chat path: rules, ordering, batched storage). First
   publish→last-recipient latency at 2 messages/s, then a sweep of publish rates until the server
   falls behind (maximum sustained deliveries/s = messages/s x members). The same load runs against
   a raw asyncio server writing one pre-built websocket frame per member (the ceiling,
   bench/realtime/raw_server.py) and a Node.js socket.io server doing the same room broadcast (the
   peer, bench/realtime/node_server.js).
2. Idle connections: ``--idle`` (10,000) connected, joined members; server RSS per connection and
   the server's CPU over ``--idle-seconds`` (30) of keep-alive.
3. Cluster: two ``halobuzz serve`` instances on PostgreSQL + Redis, 50 rooms x 100 members split
   across the instances, 200 messages/s in total: end-to-end latency.

    .venv/bin/python bench/realtime_bench.py [--clients 5000] [--skip-cluster] [--write docs/benchmarks.md]

Every process started here is stopped at the end, also on error or Ctrl-C. The chat rate limits
are raised for the publisher with CHAT_RATE_LIMIT_* (the owner's default is 100 messages / 30 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "bench" / "realtime"
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/13")
PASSWORD = "bench-Password-2026"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

processes: list[subprocess.Popen[bytes]] = []


def log(msg: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def call(base: str, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
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


def start(cmd: list[str], env: dict[str, str], core: int, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["taskset", "-c", str(core), *cmd], env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    processes.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    with contextlib.suppress(ValueError):
        processes.remove(proc)


def stop_all() -> None:
    for proc in reversed(list(processes)):
        stop(proc)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def npm_ci() -> None:
    stamp = HERE / "node_modules" / ".package-lock.json"
    lock = HERE / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    log("installing the Node.js packages (npm ci) …")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True)


def run_client(cfg: dict[str, Any], tmp: Path, on_line: Any = None, timeout: float = 900.0) -> dict[str, Any]:
    """Run the load client on core 1; returns {"ready": …, "results": [...]}."""
    path = tmp / f"client-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.Popen(
        ["taskset", "-c", "1", "node", "--max-old-space-size=2048", str(HERE / "load_client.js"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    processes.append(proc)  # type: ignore[arg-type]
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    out: dict[str, Any] = {"ready": None, "results": []}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            kind, _, body = line.strip().partition(" ")
            if kind not in ("READY", "START", "RESULT"):
                continue
            data = json.loads(body)
            if kind == "READY":
                out["ready"] = data
            elif kind == "RESULT":
                out["results"].append(data)
            if on_line:
                on_line(kind, data)
        proc.wait()
    finally:
        timer.cancel()
        stop(proc)  # type: ignore[arg-type]
    if proc.returncode != 0:
        raise RuntimeError(f"load client failed ({proc.returncode})")
    return out


def halobuzz_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "HALOBUZZ_DATA_DIR": str(tmp / "var"),
        "RATE_LIMIT_ENABLED": "false",
        "HALOBUZZ_LOG_LEVEL": "WARNING",
        # The publisher sends far more than a person would.
        "CHAT_RATE_LIMIT_MESSAGES": "100000000",
        "CHAT_RATE_LIMIT_PRIVILEGED_MESSAGES": "100000000",
        **extra,
    }
    for name in ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX"):
        if name not in extra:
            env.pop(name, None)
    return env


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = start([str(BIN / "halobuzz"), "serve", "--no-migrate", "--no-access-log", "--port", str(port)], env, 0)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def setup_streams(base: str, rooms: int, tag: str) -> tuple[str, list[str]]:
    """A creator (registered, signed in) with ``rooms`` live streams, through the HTTP API."""
    name = f"bench{tag}"
    call(
        base, "POST", "/api/v1/auth/register", {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    )
    token = call(base, "POST", "/api/v1/auth/login", {"login": name, "password": PASSWORD})["access_token"]
    call(base, "POST", "/api/v1/users/me/creator", {}, token)
    token = call(base, "POST", "/api/v1/auth/login", {"login": name, "password": PASSWORD})["access_token"]
    ids = []
    for i in range(rooms):
        sid = call(base, "POST", "/api/v1/streams", {"title": f"Bench room {i}", "language": "en"}, token)["id"]
        call(base, "POST", f"/api/v1/streams/{sid}/start", {}, token)
        ids.append(sid)
    return token, ids


def show(kind: str, data: dict[str, Any]) -> None:
    if kind == "READY":
        log(f"  ready: {data}")
    elif kind == "START":
        log(f"  phase {data['phase']} ({data['rate']} msg/s) …")
    else:
        keep = (
            "deliveries_per_s",
            "offered_deliveries_per_s",
            "last_recipient_p50_ms",
            "last_recipient_p99_ms",
            "delivery_p99_ms",
            "send_errors",
            "disconnects",
            "server_cpu_percent",
            "client_cpu_percent",
            "behind",
            "open",
        )
        log("    " + ", ".join(f"{k}={_fmt(data[k])}" for k in keep if k in data))


def _fmt(v: Any) -> str:
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def room_phases(clients: int, latency_seconds: int, sweep_seconds: int, max_rate: int) -> list[dict[str, Any]]:
    phases: list[dict[str, Any]] = [{"name": "latency", "rate": 2, "seconds": latency_seconds, "drain_seconds": 10}]
    # Deliveries/s steps from 10,000 up; messages/s = deliveries/s ÷ members.
    steps = [10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 80_000, 100_000, 130_000, 160_000, 200_000, 250_000]
    steps += [320_000, 400_000, 500_000, 650_000, 800_000, 1_000_000]
    rates = sorted({max(1, round(d / clients)) for d in steps if d / clients <= max_rate})
    for rate in rates:
        phases.append(
            {"name": f"sweep-{rate}", "rate": rate, "seconds": sweep_seconds, "sweep": True, "drain_seconds": 5}
        )
    return phases


def summarize_room(label: str, out: dict[str, Any]) -> dict[str, Any]:
    results = out["results"]
    lat = next((r for r in results if r["phase"] == "latency"), None)
    sweeps = [r for r in results if r["phase"].startswith("sweep")]
    sustained = [r for r in sweeps if not r["behind"]]
    best = max(sustained, key=lambda r: r["deliveries_per_s"]) if sustained else None
    peak = max((r["deliveries_per_s"] for r in sweeps), default=0)
    summary = {
        "server": label,
        "members": out["ready"]["members"] if out["ready"] else 0,
        "connect_failures": out["ready"]["member_failures"] if out["ready"] else None,
        "connect_seconds": out["ready"]["connect_seconds"] if out["ready"] else None,
        "p50_ms": lat["last_recipient_p50_ms"] if lat else None,
        "p99_ms": lat["last_recipient_p99_ms"] if lat else None,
        "latency_complete": f"{lat['complete_messages']}/{lat['messages']}" if lat else None,
        "sustained_deliveries_per_s": best["deliveries_per_s"] if best else 0,
        "sustained_rate": best["rate"] if best else 0,
        "peak_deliveries_per_s": peak,
        "sweep_capped": bool(sweeps) and not sweeps[-1]["behind"],
        # Where the sweep stopped: which core was saturated there.
        "last_step": {
            k: sweeps[-1].get(k)
            for k in (
                "rate",
                "offered_deliveries_per_s",
                "deliveries_per_s",
                "server_cpu_percent",
                "client_cpu_percent",
            )
        }
        if sweeps
        else None,
    }
    log(f"{label}: {summary}")
    return summary


def part_room(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    log(f"== 1. one room of {args.clients} members: latency at 2 msg/s, then a publish-rate sweep ==")
    env = halobuzz_env(tmp)
    log("migrating (SQLite, embedded mode) …")
    subprocess.run([str(BIN / "halobuzz"), "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)
    port = free_port()
    hb = serve(env, port)
    base = f"http://127.0.0.1:{port}"
    token, (stream_id,) = setup_streams(base, 1, "owner")
    phases = room_phases(args.clients, args.latency_seconds, args.sweep_seconds, args.max_rate)
    summaries: dict[str, Any] = {}

    def measure(label: str, url: str, pid: int) -> None:
        mark: dict[str, float] = {}

        def on_line(kind: str, data: dict[str, Any]) -> None:
            if kind == "START":
                mark.update(cpu=cpu_seconds(pid), t=time.monotonic())
            elif kind == "RESULT" and mark:
                data["server_cpu_percent"] = round(
                    100 * (cpu_seconds(pid) - mark["cpu"]) / (time.monotonic() - mark["t"])
                )
            show(kind, data)

        cfg = {
            "groups": [{"url": url, "stream_id": stream_id, "count": args.clients}],
            "publishers": [{"url": url, "stream_id": stream_id, "token": token}],
            "connect_concurrency": 200,
            "phases": phases,
        }
        log(f"-- {label} --")
        summaries[label] = summarize_room(label, run_client(cfg, tmp, on_line))

    try:
        measure("halobuzz", base, hb.pid)
    finally:
        stop(hb)
    if args.skip_references:
        return summaries
    raw_port = free_port()
    raw = start([sys.executable, str(HERE / "raw_server.py"), str(raw_port)], os.environ.copy(), 0)
    try:
        wait_http(f"http://127.0.0.1:{raw_port}/", raw)
        measure("raw-asyncio", f"http://127.0.0.1:{raw_port}", raw.pid)
    finally:
        stop(raw)
    node_port = free_port()
    node = start(["node", str(HERE / "node_server.js"), str(node_port)], os.environ.copy(), 0, HERE)
    try:
        wait_http(f"http://127.0.0.1:{node_port}/", node)
        measure("node-socket.io", f"http://127.0.0.1:{node_port}", node.pid)
    finally:
        stop(node)
    return summaries


def part_idle(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    log(f"== 2. {args.idle} idle connections: RSS per connection, keep-alive CPU over {args.idle_seconds} s ==")
    env = halobuzz_env(tmp)
    subprocess.run([str(BIN / "halobuzz"), "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)
    port = free_port()
    hb = serve(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        _, (stream_id,) = setup_streams(base, 1, "idle")
        time.sleep(1)
        pid = hb.pid
        before = rss_bytes(pid)
        sample: dict[str, float] = {}

        def on_line(kind: str, data: dict[str, Any]) -> None:
            show(kind, data)
            if kind == "READY":
                time.sleep(2)  # let the last joins settle
                sample["rss_after"] = rss_bytes(pid)
            if kind == "START":
                sample["cpu0"] = cpu_seconds(pid)
                sample["t0"] = time.monotonic()
            if kind == "RESULT":
                sample["cpu1"] = cpu_seconds(pid)
                sample["t1"] = time.monotonic()
                sample["rss_end"] = rss_bytes(pid)

        cfg = {
            "groups": [{"url": base, "stream_id": stream_id, "count": args.idle}],
            "publishers": [],
            "connect_concurrency": 200,
            "phases": [{"name": "idle", "seconds": args.idle_seconds}],
        }
        out = run_client(cfg, tmp, on_line)
    finally:
        stop(hb)
    members = out["ready"]["members"]
    result = {
        "connections": members,
        "connect_failures": out["ready"]["member_failures"],
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(sample["rss_after"] / 2**20, 1),
        "rss_per_connection_kb": round((sample["rss_after"] - before) / max(members, 1) / 1024, 1),
        "cpu_percent": round(100 * (sample["cpu1"] - sample["cpu0"]) / (sample["t1"] - sample["t0"]), 2),
        "idle_seconds": args.idle_seconds,
        "open_at_end": out["results"][0]["open"],
    }
    log(f"idle: {result}")
    return result


def part_cluster(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rooms, per_room, rate = 50, 100, 200
    log(f"== 3. two instances + PostgreSQL + Redis: {rooms} rooms x {per_room} members, {rate} msg/s ==")
    db = f"hb_rtbench_{uuid.uuid4().hex[:8]}"
    prefix = f"hbrtbench{uuid.uuid4().hex[:8]}:"
    psql(f'CREATE DATABASE "{db}"')
    redis_url = REDIS_BASE
    env = halobuzz_env(
        tmp,
        DATABASE_URL=PG_ADMIN.rsplit("/", 1)[0] + f"/{db}",
        REDIS_URL=redis_url,
        REDIS_PREFIX=prefix,
    )
    procs = []
    try:
        log(f"migrating {db} …")
        subprocess.run([str(BIN / "halobuzz"), "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)
        ports = [free_port(), free_port()]
        procs = [serve(env, p) for p in ports]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        token, streams = setup_streams(urls[0], rooms, "cluster")
        groups = []
        publishers = []
        for i, sid in enumerate(streams):
            groups.append({"url": urls[0], "stream_id": sid, "count": per_room // 2})
            groups.append({"url": urls[1], "stream_id": sid, "count": per_room - per_room // 2})
            publishers.append({"url": urls[i % 2], "stream_id": sid, "token": token})
        cfg = {
            "groups": groups,
            "publishers": publishers,
            "connect_concurrency": 200,
            "phases": [
                {"name": "warm-up", "rate": rate, "seconds": 3, "drain_seconds": 5},
                {"name": "cluster", "rate": rate, "seconds": args.cluster_seconds, "drain_seconds": 10},
            ],
        }
        out = run_client(cfg, tmp, show)
    finally:
        for p in procs:
            stop(p)
        with contextlib.suppress(Exception):
            psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        with contextlib.suppress(Exception):
            keys = subprocess.run(
                ["redis-cli", "-u", redis_url, "--scan", "--pattern", prefix + "*"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            for i in range(0, len(keys), 500):
                subprocess.run(["redis-cli", "-u", redis_url, "del", *keys[i : i + 500]], capture_output=True)
    r = next(r for r in out["results"] if r["phase"] == "cluster")
    result = {
        "members": out["ready"]["members"],
        "connect_failures": out["ready"]["member_failures"],
        "messages": r["messages"],
        "send_errors": r["send_errors"],
        "deliveries": r["deliveries"],
        "deliveries_expected": r["deliveries_expected"],
        "deliveries_per_s": r["deliveries_per_s"],
        "delivery_p50_ms": r["delivery_p50_ms"],
        "delivery_p99_ms": r["delivery_p99_ms"],
        "last_recipient_p99_ms": r["last_recipient_p99_ms"],
        "disconnects": r["disconnects"],
    }
    log(f"cluster: {result}")
    return result


def fmt_ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def write_markdown(path: Path, args: argparse.Namespace, report: dict[str, Any]) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    lines = [f"\n\n### Run {report['date']} ({commit.stdout.strip()}): `{report['command']}`\n"]
    room = report.get("room")
    if room:
        lines.append(
            "| server | members | sustained deliveries/s (msg/s) | peak deliveries/s | p50 / p99 at 2 msg/s "
            "| last step: offered → delivered/s, server / client CPU |"
        )
        lines.append("|---|---|---|---|---|---|")
        for s in room.values():
            capped = " (sweep cap)" if s["sweep_capped"] else ""
            last = s["last_step"]
            step = (
                f"{last['offered_deliveries_per_s']:,} → {last['deliveries_per_s']:,}, "
                f"{last['server_cpu_percent']} % / {last['client_cpu_percent']} %"
                if last
                else "—"
            )
            lines.append(
                f"| {s['server']} | {s['members']} | {s['sustained_deliveries_per_s']:,} ({s['sustained_rate']}){capped} | "
                f"{s['peak_deliveries_per_s']:,} | {fmt_ms(s['p50_ms'])} / {fmt_ms(s['p99_ms'])} | {step} |"
            )
    idle = report.get("idle")
    if idle:
        lines.append(
            f"\nIdle: {idle['connections']:,} connections, RSS {idle['rss_before_mb']} → {idle['rss_after_mb']} MB "
            f"({idle['rss_per_connection_kb']} KB per connection), keep-alive CPU {idle['cpu_percent']} % of a core "
            f"over {idle['idle_seconds']} s, {idle['open_at_end']:,} still open."
        )
    cluster = report.get("cluster")
    if cluster:
        lines.append(
            f"\nCluster: {cluster['members']:,} members, {cluster['messages']:,} messages, "
            f"{cluster['deliveries']:,}/{cluster['deliveries_expected']:,} deliveries, end-to-end p50 "
            f"{fmt_ms(cluster['delivery_p50_ms'])}, p99 {fmt_ms(cluster['delivery_p99_ms'])} (last recipient p99 "
            f"{fmt_ms(cluster['last_recipient_p99_ms'])}), send errors {cluster['send_errors']}, disconnects "
            f"{cluster['disconnects']}."
        )
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=5000, help="members of the broadcast room")
    ap.add_argument("--latency-seconds", type=int, default=15, help="seconds at 2 messages/s")
    ap.add_argument("--sweep-seconds", type=int, default=5, help="seconds per publish rate of the sweep")
    ap.add_argument("--max-rate", type=int, default=200, help="highest publish rate (messages/s) of the sweep")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections")
    ap.add_argument("--idle-seconds", type=int, default=30)
    ap.add_argument("--cluster-seconds", type=int, default=20)
    ap.add_argument("--skip-room", action="store_true")
    ap.add_argument(
        "--skip-references", action="store_true", help="room part: halobuzz only (no figures to compare; for iterating)"
    )
    ap.add_argument("--skip-idle", action="store_true")
    ap.add_argument("--skip-cluster", action="store_true")
    ap.add_argument("--json", type=Path, help="write the full report as JSON here")
    ap.add_argument("--write", type=Path, help="append the figures to this markdown file")
    args = ap.parse_args()

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    npm_ci()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python " + " ".join(["bench/realtime_bench.py", *sys.argv[1:]]),
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hb-rtbench-") as name:
        tmp = Path(name)
        try:
            if not args.skip_room:
                report["room"] = part_room(args, tmp)
            if not args.skip_idle:
                report["idle"] = part_idle(args, tmp)
            if not args.skip_cluster:
                report["cluster"] = part_cluster(args, tmp)
        finally:
            stop_all()
    log(f"done in {time.monotonic() - started:.0f} s")
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.write:
        write_markdown(args.write, args, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
