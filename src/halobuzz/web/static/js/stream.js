// Stream page: hls.js (or native HLS) playback with a quality picker, live chat over Socket.IO
// (history on join, recovery after a dropped connection), chat modes and gift animations.
(function () {
  "use strict";
  var root = document.getElementById("stream");
  if (!root) return;
  var streamId = root.dataset.streamId;
  var signedIn = root.dataset.signedIn === "true";
  var HB = window.HaloBuzz;

  // --- player ---------------------------------------------------------------------------
  var media = document.getElementById("media");
  var status = document.getElementById("player-status");
  function startPlayer() {
    // The page renders the playback URL when the media plane serves one; otherwise the placeholder stays.
    var url = root.dataset.hlsUrl;
    if (!url || !media) return;
    var audioOnly = root.dataset.audioOnly === "true";
    if (window.Hls && window.Hls.isSupported()) {
      var hls = new window.Hls({ lowLatencyMode: true });
      hls.loadSource(url);
      hls.attachMedia(media);
      hls.on(window.Hls.Events.MANIFEST_PARSED, function (_e, data) {
        if (status) status.hidden = true;
        media.play().catch(function () {});
        if (!audioOnly && data.levels && data.levels.length > 1) {
          var picker = document.getElementById("quality");
          data.levels.forEach(function (level, i) {
            var opt = document.createElement("option");
            opt.value = String(i);
            opt.textContent = level.height ? level.height + "p" : Math.round(level.bitrate / 1000) + " kbps";
            picker.appendChild(opt);
          });
          document.getElementById("quality-wrap").hidden = false;
          picker.addEventListener("change", function () { hls.currentLevel = parseInt(picker.value, 10); });
        }
      });
    } else if (media.canPlayType("application/vnd.apple.mpegurl")) {
      media.src = url;
      if (status) status.hidden = true;
    }
  }

  // --- gifts ----------------------------------------------------------------------------
  var stage = document.getElementById("gift-stage");
  function animateGift(gift) {
    if (!stage || !gift) return;
    var img = document.createElement("img");
    img.className = "gift-pop";
    img.alt = gift.name || "gift";
    img.src = String(gift.animation_url || "").replace(/\.json$/, ".svg");
    img.addEventListener("animationend", function () { img.remove(); });
    stage.appendChild(img);
  }

  // --- chat -----------------------------------------------------------------------------
  var list = document.getElementById("messages");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var errorBox = document.getElementById("chat-error");
  var modesText = document.getElementById("modes-text");
  var epoch = null;
  var lastSeq = null;
  var seen = {};
  list.querySelectorAll("li[data-id]").forEach(function (li) { seen[li.dataset.id] = true; });

  function render(m) {
    if (seen[m.id]) return;
    seen[m.id] = true;
    var li = document.createElement("li");
    li.dataset.id = m.id;
    li.dataset.seq = m.seq;
    var b = document.createElement("b");
    b.textContent = (m.user && m.user.username) || "";
    li.appendChild(b);
    li.appendChild(document.createTextNode(" " + m.text));
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }
  function track(m) {
    if (m.epoch !== epoch) epoch = m.epoch;
    if (lastSeq === null || m.seq > lastSeq) lastSeq = m.seq;
  }
  function showModes(modes) {
    if (!modesText || !modes) return;
    var parts = [];
    if (modes.slow_mode_seconds) parts.push("slow " + modes.slow_mode_seconds + "s");
    if (modes.followers_only_minutes !== null && modes.followers_only_minutes !== undefined) parts.push("followers-only");
    if (modes.subscribers_only) parts.push("subscribers-only");
    if (modes.emote_only) parts.push("emote-only");
    modesText.textContent = parts.join(" ") || "—";
  }
  function showError(text) {
    if (!errorBox) return;
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  function connect(token) {
    if (!window.io) return;
    var socket = window.io({ auth: token ? { token: token } : {}, transports: ["websocket", "polling"] });
    function join() {
      var payload = { stream_id: streamId };
      if (epoch !== null && lastSeq !== null) { payload.epoch = epoch; payload.last_seq = lastSeq; }
      socket.emit("join_stream", payload, function (ack) {
        if (!ack || !ack.ok) return;
        if (!ack.recovered) { list.textContent = ""; seen = {}; }
        (ack.messages || []).forEach(function (m) { render(m); });
        epoch = ack.epoch; lastSeq = ack.last_seq;
        root.dataset.chatReady = "true";
        showError("");
      });
    }
    socket.on("connect", join);
    socket.on("disconnect", function () { showError(document.getElementById("chat-modes").dataset.reconnecting); });
    socket.on("connect_error", function () {
      // The access token may have expired: fetch a fresh one before the next attempt.
      if (signedIn) HB.token().then(function (t) { if (t) socket.auth = { token: t }; });
    });
    socket.on("new_message", function (m) { if (m.stream_id === streamId) { track(m); render(m); } });
    socket.on("message_deleted", function (e) {
      var li = list.querySelector('li[data-id="' + e.message_id + '"]');
      if (li) li.remove();
    });
    socket.on("chat_mode_changed", function (e) { showModes(e.modes); });
    socket.on("gift_received", function (e) { animateGift(e.gift); });
    socket.on("stream_ended", function () { if (status) { status.hidden = false; } });
    socket.on("session_ended", function () { window.location.reload(); });
    if (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var text = input.value.trim();
        if (!text) return;
        socket.emit("send_message", { stream_id: streamId, text: text }, function (ack) {
          if (ack && ack.ok) { input.value = ""; showError(""); if (ack.message) { track(ack.message); render(ack.message); } }
          else { showError(ack && ack.error ? ack.error.message || ack.error.code : "error"); }
        });
      });
    }
  }

  // Gift buttons post with the page token when scripts run (the form posts without them).
  document.querySelectorAll("form.gift-form").forEach(function (giftForm) {
    giftForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      HB.token().then(function (t) {
        var key = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random();
        return HB.api("POST", "/streams/" + streamId + "/gifts", t, { gift_id: giftForm.dataset.giftId, quantity: 1 }, { "Idempotency-Key": key });
      }).then(function (res) {
        if (!res.ok) showError(res.data && res.data.error ? res.data.error.message : "error");
      });
    });
  });

  (signedIn ? HB.token() : Promise.resolve(null)).then(function (token) {
    startPlayer();
    connect(token);
  });
})();
