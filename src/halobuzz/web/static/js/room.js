// A stream's Socket.IO room: connect (signed in with the page token, or anonymously), join with
// gap-free recovery after a dropped connection ({epoch, last_seq} of the last message seen), and
// hand events to the page.
(function () {
  "use strict";
  var HB = window.HaloBuzz;

  // A chat line: the author in bold and the text as text (never as HTML); `extra` is appended.
  HB.chatLine = function (m, extra) {
    var li = document.createElement("li");
    li.dataset.id = m.id;
    if (m.seq !== undefined) li.dataset.seq = m.seq;
    li.dataset.userId = (m.user && m.user.id) || "";
    var b = document.createElement("b");
    b.textContent = (m.user && m.user.username) || "";
    var span = document.createElement("span");
    span.className = "text";
    span.textContent = m.text;
    li.appendChild(b);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(span);
    if (extra) {
      li.appendChild(document.createTextNode(" "));
      li.appendChild(extra);
    }
    return li;
  };

  HB.room = function (opts) {
    var streamId = opts.streamId;
    var epoch = null;
    var lastSeq = null;
    var handlers = opts.on || {};

    function track(m) {
      if (!m || m.seq === undefined || !m.epoch) return;
      if (m.epoch !== epoch) { epoch = m.epoch; lastSeq = m.seq; return; }
      if (lastSeq === null || m.seq > lastSeq) lastSeq = m.seq;
    }

    function connect(token) {
      if (!window.io) return null;
      var socket = window.io({ auth: token ? { token: token } : {}, transports: ["websocket", "polling"] });
      HB.socket = socket;
      function join() {
        var payload = { stream_id: streamId };
        if (epoch !== null && lastSeq !== null) { payload.epoch = epoch; payload.last_seq = lastSeq; }
        socket.emit("join_stream", payload, function (ack) {
          if (!ack || !ack.ok) { if (opts.onState) opts.onState("error", ack); return; }
          epoch = ack.epoch;
          lastSeq = ack.last_seq;
          if (opts.onJoin) opts.onJoin(ack);
          if (opts.onState) opts.onState("joined", ack);
        });
      }
      socket.on("connect", join);
      socket.on("disconnect", function (reason) { if (opts.onState) opts.onState("disconnected", reason); });
      socket.on("connect_error", function () {
        if (opts.onState) opts.onState("disconnected");
        // The access token may have expired: fetch a fresh one before the next attempt.
        if (token) HB.token(true).then(function (t) { if (t) socket.auth = { token: t }; });
      });
      socket.on("new_message", function (m) {
        if (m.stream_id !== streamId) return;
        track(m);
        if (opts.onMessage) opts.onMessage(m);
      });
      Object.keys(handlers).forEach(function (name) {
        socket.on(name, function (e) { if (!e || !e.stream_id || e.stream_id === streamId) handlers[name](e); });
      });
      return socket;
    }

    var room = { socket: null, track: track };
    room.ready = (opts.signedIn ? HB.token() : Promise.resolve(null)).then(function (token) {
      room.socket = connect(token);
      return room;
    });
    // A signed-in socket is also in the user's own room: the bell in the header listens on it.
    if (opts.signedIn) HB.sharedSocket = room.ready.then(function (r) { return r.socket; });
    room.send = function (text, done) {
      if (!room.socket) return;
      room.socket.emit("send_message", { stream_id: streamId, text: text }, function (ack) {
        if (ack && ack.ok && ack.message) track(ack.message);
        done(ack || { ok: false, error: { code: "no_ack", message: "no answer" } });
      });
    };
    return room;
  };
})();
