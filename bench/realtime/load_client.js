// Websocket load client for bench/realtime_bench.py.
//
// Speaks websocket (RFC 6455) and the Engine.IO v4 / Socket.IO v5 wire protocol directly over raw
// TCP sockets (no socket.io-client, no websocket library), so that one core receives hundreds of
// thousands of frames per second: a read holding many frames costs one callback. Usage: node load_client.js CONFIG.json
//
// CONFIG: {
//   "groups": [{"url": "http://127.0.0.1:PORT", "stream_id": "...", "count": 5000}],  // anonymous members
//   "publishers": [{"url": "...", "stream_id": "...", "token": "..."}],               // signed-in senders
//   "connect_concurrency": 200,
//   "phases": [{"name": "latency", "rate": 2, "seconds": 15, "sweep": false}, {"name": "idle", "seconds": 30}]
// }
// A phase with a rate sends `rate` messages/s in total (round-robin over the publishers) with
// `send_message`; every member records when each message arrives. Phases marked "sweep" stop at the
// first one where the server falls behind. Progress goes to stderr; one `RESULT {json}` line per
// phase (and `READY {json}` once everyone joined) goes to stdout.
"use strict";

const fs = require("fs");
const net = require("net");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const TEXT_KEY = Buffer.from('"text":"m');
const QUOTE = 0x22;

function log(msg) {
  process.stderr.write(`[client ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// Per message k: sent time, deliveries expected, received, last arrival.
const sentAt = [];
const expected = [];
const received = [];
const lastAt = [];
let deliveryLatencies = [];
let deliveredTotal = 0;
let disconnects = 0;
let sendErrors = 0;
let firstSendError = null;
const roomMembers = new Map(); // stream_id -> joined members

function now() {
  return performance.now();
}

function onNewMessage(buf, s, e, at) {
  const i = buf.indexOf(TEXT_KEY, s);
  if (i < 0 || i >= e) return;
  let k = 0;
  for (let j = i + TEXT_KEY.length; j < e && buf[j] !== QUOTE; j++) k = k * 10 + (buf[j] - 48);
  if (sentAt[k] === undefined) return;
  received[k]++;
  deliveredTotal++;
  lastAt[k] = at;
  deliveryLatencies.push(at - sentAt[k]);
}

// One websocket over a raw TCP socket: frames are parsed straight from each chunk read (many
// frames per callback), client frames are masked with a zero key (RFC 6455 allows any key).
const HANDSHAKE_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const ZERO_MASK = Buffer.alloc(4);

function clientFrame(text, opcode = 0x1) {
  const data = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const n = data.length;
  let head;
  if (n < 126) head = Buffer.from([0x80 | opcode, 0x80 | n]);
  else {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(n, 2);
  }
  return Buffer.concat([head, ZERO_MASK, data]);
}

const PONG = clientFrame("3");

class Conn {
  constructor(url, streamId, token, member) {
    const u = new URL(url);
    this.streamId = streamId;
    this.member = member;
    this.token = token;
    this.acks = new Map();
    this.nextAck = 0;
    this.open = false;
    this.upgraded = false;
    this.pending = null;
    this.ready = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.sock = net.connect({ host: u.hostname, port: Number(u.port) });
    this.sock.setNoDelay(true);
    this.sock.on("connect", () =>
      this.sock.write(
        `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${HANDSHAKE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    this.sock.on("data", (chunk) => this.onData(chunk));
    this.sock.on("error", (err) => this.reject(err));
    this.sock.on("close", () => {
      if (this.open) disconnects++;
      this.open = false;
      this.reject(new Error("closed before joining"));
    });
  }

  terminate() {
    this.sock.destroy();
  }

  onData(chunk) {
    const at = now();
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let pos = 0;
    if (!this.upgraded) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        this.pending = buf;
        return;
      }
      if (!buf.toString("latin1", 0, 12).includes("101")) {
        this.reject(new Error(`handshake refused: ${buf.toString("latin1", 0, end)}`));
        this.sock.destroy();
        return;
      }
      this.upgraded = true;
      pos = end + 4;
    }
    const size = buf.length;
    while (size - pos >= 2) {
      const b0 = buf[pos];
      let len = buf[pos + 1] & 0x7f;
      let head = 2;
      if (len === 126) {
        if (size - pos < 4) break;
        len = buf.readUInt16BE(pos + 2);
        head = 4;
      } else if (len === 127) {
        if (size - pos < 10) break;
        len = Number(buf.readBigUInt64BE(pos + 2));
        head = 10;
      }
      if (size - pos < head + len) break;
      const start = pos + head;
      pos = start + len;
      const opcode = b0 & 0x0f;
      if (opcode === 0x1) this.onPacket(buf, start, pos, at);
      else if (opcode === 0x9) this.sock.write(clientFrame(Buffer.from(buf.subarray(start, pos)), 0xa));
      else if (opcode === 0x8) {
        this.sock.destroy();
        return;
      }
    }
    this.pending = pos < size ? buf.subarray(pos) : null;
  }

  emit(event, body, onAck) {
    const id = this.nextAck++;
    this.acks.set(id, onAck);
    this.sock.write(clientFrame(`42${id}${JSON.stringify([event, body])}`));
  }

  onPacket(buf, s, e, at) {
    const c0 = buf[s];
    if (c0 === 0x34 /* 4: message */) {
      const c1 = buf[s + 1];
      if (c1 === 0x32 /* 2: event */) {
        if (this.member) onNewMessage(buf, s, e, at);
      } else if (c1 === 0x33 /* 3: ack */) {
        let j = s + 2;
        let id = 0;
        while (buf[j] >= 48 && buf[j] <= 57) id = id * 10 + (buf[j++] - 48);
        const cb = this.acks.get(id);
        if (cb) {
          this.acks.delete(id);
          cb(JSON.parse(buf.toString("utf8", j, e))[0]);
        }
      } else if (c1 === 0x30 /* 0: connected */) {
        this.emit("join_stream", { stream_id: this.streamId }, (ack) => {
          if (ack && ack.ok) {
            this.open = true;
            roomMembers.set(this.streamId, (roomMembers.get(this.streamId) || 0) + (this.member ? 1 : 0));
            this.resolve();
          } else this.reject(new Error(`join refused: ${JSON.stringify(ack)}`));
        });
      } else if (c1 === 0x34 /* 4: connect_error */) {
        this.reject(new Error(`connect refused: ${buf.toString("utf8", s, e)}`));
      }
    } else if (c0 === 0x32 /* 2: ping */) {
      this.sock.write(PONG);
    } else if (c0 === 0x30 /* 0: open */) {
      this.sock.write(clientFrame(this.token ? `40${JSON.stringify({ token: this.token })}` : "40"));
    }
  }
}

async function connectAll(specs, concurrency) {
  const conns = [];
  let failures = 0;
  let firstError = null;
  let next = 0;
  let done = 0;
  const started = now();
  async function worker() {
    while (next < specs.length) {
      const spec = specs[next++];
      const conn = new Conn(spec.url, spec.stream_id, spec.token, spec.member);
      try {
        await conn.ready;
        conns.push(conn);
      } catch (err) {
        failures++;
        if (!firstError) firstError = String(err && err.message ? err.message : err);
        conn.terminate();
      }
      done++;
      if (done % 1000 === 0) log(`${done}/${specs.length} connected and joined`);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, worker));
  return { conns, failures, firstError, seconds: (now() - started) / 1000 };
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function runRatePhase(phase, publishers) {
  const first = sentAt.length;
  deliveryLatencies = [];
  const startDisconnects = disconnects;
  const cpu0 = process.cpuUsage();
  const total = Math.max(1, Math.round(phase.rate * phase.seconds));
  const start = now();
  let sent = 0;
  let pi = 0;
  let acked = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((now() - start) / 1000) * phase.rate) + 1);
      while (sent < due) {
        const pub = publishers[pi++ % publishers.length];
        const k = sentAt.length;
        sentAt.push(now());
        expected.push(roomMembers.get(pub.streamId) || 0);
        received.push(0);
        lastAt.push(0);
        pub.emit("send_message", { stream_id: pub.streamId, text: `m${k}` }, (ack) => {
          acked++;
          if (!ack || ack.ok !== true || ack.held) {
            sendErrors++;
            if (!firstSendError) firstSendError = JSON.stringify(ack);
          }
        });
        sent++;
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 2);
    };
    tick();
  });
  const sendEnd = now();
  const last = sentAt.length;
  let want = 0;
  for (let k = first; k < last; k++) want += expected[k];
  // Drain: wait for every delivery (or the drain time).
  const drainUntil = sendEnd + (phase.drain_seconds ?? 10) * 1000;
  let got = 0;
  while (now() < drainUntil) {
    got = 0;
    for (let k = first; k < last; k++) got += received[k];
    if (got >= want) break;
    await sleep(20);
  }
  got = 0;
  let lastDelivery = start;
  const lastLat = [];
  let complete = 0;
  for (let k = first; k < last; k++) {
    got += received[k];
    if (lastAt[k] > lastDelivery) lastDelivery = lastAt[k];
    if (received[k] >= expected[k] && expected[k] > 0) {
      complete++;
      lastLat.push(lastAt[k] - sentAt[k]);
    }
  }
  lastLat.sort((a, b) => a - b);
  const lat = Float64Array.from(deliveryLatencies).sort();
  const span = (lastDelivery - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const clientCpu = Math.round((cpu.user + cpu.system) / 10 / (now() - start)) ;
  const offered = (want / phase.seconds) | 0;
  const achieved = span > 0 ? got / span : 0;
  const result = {
    phase: phase.name,
    rate: phase.rate,
    seconds: phase.seconds,
    messages: last - first,
    acked,
    send_errors: sendErrors,
    first_send_error: firstSendError,
    deliveries_expected: want,
    deliveries: got,
    complete_messages: complete,
    offered_deliveries_per_s: offered,
    deliveries_per_s: Math.round(achieved),
    last_recipient_p50_ms: pct(lastLat, 50),
    last_recipient_p99_ms: pct(lastLat, 99),
    last_recipient_max_ms: lastLat.length ? lastLat[lastLat.length - 1] : null,
    delivery_p50_ms: pct(lat, 50),
    delivery_p99_ms: pct(lat, 99),
    disconnects: disconnects - startDisconnects,
    client_cpu_percent: clientCpu,
  };
  result.behind =
    got < 0.99 * want ||
    result.last_recipient_p99_ms === null ||
    result.last_recipient_p99_ms > 1000 ||
    achieved < 0.9 * offered ||
    result.disconnects > 0 ||
    sendErrors > 0;
  return result;
}

async function main() {
  const specs = [];
  for (const g of config.groups)
    for (let i = 0; i < g.count; i++) specs.push({ url: g.url, stream_id: g.stream_id, token: null, member: true });
  const pubSpecs = (config.publishers || []).map((p) => ({ ...p, member: false }));
  log(`connecting ${specs.length} members and ${pubSpecs.length} publishers …`);
  const members = await connectAll(specs, config.connect_concurrency || 200);
  const pubs = await connectAll(pubSpecs, 50);
  const ready = {
    members: members.conns.length,
    member_failures: members.failures,
    first_error: members.firstError || pubs.firstError,
    publishers: pubs.conns.length,
    connect_seconds: Math.round(members.seconds * 10) / 10,
  };
  process.stdout.write(`READY ${JSON.stringify(ready)}\n`);
  log(`ready: ${JSON.stringify(ready)}`);
  let stopSweep = false;
  for (const phase of config.phases) {
    if (phase.sweep && stopSweep) continue;
    process.stdout.write(`START ${JSON.stringify({ phase: phase.name, rate: phase.rate || 0 })}\n`);
    let result;
    if (phase.rate) {
      if (!pubs.conns.length) throw new Error("no publisher connected");
      log(`phase ${phase.name}: ${phase.rate} messages/s for ${phase.seconds} s …`);
      result = await runRatePhase(phase, pubs.conns);
      if (phase.sweep && result.behind) stopSweep = true;
    } else {
      log(`phase ${phase.name}: idle for ${phase.seconds} s …`);
      const before = disconnects;
      await sleep(phase.seconds * 1000);
      result = { phase: phase.name, seconds: phase.seconds, open: members.conns.filter((c) => c.open).length, disconnects: disconnects - before };
    }
    log(`  ${JSON.stringify(result)}`);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  }
  for (const c of [...members.conns, ...pubs.conns]) c.terminate();
  process.exit(0);
}

main().catch((err) => {
  log(`failed: ${err && err.stack ? err.stack : err}`);
  process.exit(2);
});
