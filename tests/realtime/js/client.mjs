// Connects with the official socket.io-client, joins a stream, sends a message, and prints what
// happened as one JSON line: {acks: {...}, events: [[name, payload], ...]} or {error, ...}.
// Usage: node client.mjs <url> <access token> <stream id> <text> [pings]
// With [pings], it then stays connected until that many Engine.IO pings arrived over the websocket.
import { io } from "socket.io-client";

const [url, token, streamId, text, pings] = process.argv.slice(2);
const WAIT_MS = 10000;
const out = { acks: {}, events: [], transport: null, pings: 0 };

function finish(code, extra = {}) {
  process.stdout.write(JSON.stringify({ ...out, ...extra }) + "\n");
  process.exit(code);
}

const overall = setTimeout(() => finish(1, { error: "timed out" }), 3 * WAIT_MS);

function waitFor(check, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      if (check()) return resolve();
      if (Date.now() - started > WAIT_MS) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 10);
    };
    poll();
  });
}

const socket = io(url, { auth: { token }, reconnection: false, timeout: WAIT_MS });
socket.onAny((event, ...args) => out.events.push([event, args[0] ?? null]));
socket.on("connect_error", (err) => finish(1, { error: { message: err.message, data: err.data ?? null } }));
socket.on("connect", async () => {
  try {
    const call = (event, payload) => socket.timeout(WAIT_MS).emitWithAck(event, payload);
    out.acks.join = await call("join_stream", { stream_id: streamId });
    out.acks.bad_join = await call("join_stream", { stream_id: "not-a-uuid" });
    out.acks.send = await call("send_message", { stream_id: streamId, text });
    await waitFor(
      () => out.events.some(([name, data]) => name === "new_message" && data && data.text === text),
      "our own new_message",
    );
    // Let the polling → websocket upgrade finish when it is under way, so it is exercised too.
    await waitFor(() => socket.io.engine.transport.name === "websocket", "the websocket upgrade").catch(() => {});
    out.transport = socket.io.engine.transport.name;
    if (pings) {
      socket.io.engine.on("ping", () => {
        if (socket.io.engine.transport.name === "websocket") out.pings += 1;
      });
      await waitFor(() => out.pings >= Number(pings), `${pings} pings over the websocket`);
      out.acks.after_pings = await call("leave_stream", { stream_id: streamId });
      out.connected = socket.connected;
    }
    clearTimeout(overall);
    socket.disconnect();
    finish(0);
  } catch (err) {
    finish(1, { error: String(err) });
  }
});
