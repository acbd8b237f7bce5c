// Reference Socket.IO server (npm socket.io, one Node.js process) for bench/realtime_bench.py.
//
// Serves the two events the benchmark uses the way the gateway does: `join_stream` joins the room
// `stream:{id}` and acks; `send_message` acks and broadcasts a `new_message` payload of the same
// shape to the room (no storage, no rules: the peer's broadcast cost). Usage: node node_server.js PORT
"use strict";

const http = require("http");
const crypto = require("crypto");
const { Server } = require("socket.io");

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end("ok");
});
const io = new Server(server, { transports: ["websocket", "polling"], perMessageDeflate: false });
const epoch = crypto.randomUUID();
const seqs = new Map();

io.on("connection", (socket) => {
  const auth = socket.handshake.auth || {};
  const user = auth.token ? { id: crypto.randomUUID(), username: "publisher" } : null;
  socket.on("join_stream", (data, ack) => {
    socket.join(`stream:${data.stream_id}`);
    if (typeof ack === "function") ack({ ok: true, epoch, last_seq: seqs.get(data.stream_id) || 0, recovered: false, messages: [] });
  });
  socket.on("send_message", (data, ack) => {
    if (!user) return typeof ack === "function" && ack({ ok: false, error: { code: "auth_required" } });
    const seq = (seqs.get(data.stream_id) || 0) + 1;
    seqs.set(data.stream_id, seq);
    const message = {
      id: crypto.randomUUID(),
      stream_id: data.stream_id,
      user,
      text: String(data.text).trim(),
      epoch,
      seq,
      created_at: new Date().toISOString(),
    };
    io.to(`stream:${data.stream_id}`).emit("new_message", message);
    if (typeof ack === "function") ack({ ok: true, message });
  });
});

server.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
