// The studio page of a stream: its live chat with moderation buttons, gifts as they arrive,
// viewer count and go-live status, and the ingest health refreshed every few seconds.
(function () {
  "use strict";
  var root = document.getElementById("studio");
  if (!root) return;
  var HB = window.HaloBuzz;
  var d = root.dataset;
  var streamId = d.streamId;
  var list = document.getElementById("messages");
  var template = document.getElementById("mod-actions");
  var feed = document.getElementById("gift-feed");
  var statusEl = document.getElementById("stream-status");
  var viewers = document.getElementById("viewer-count");
  var state = document.getElementById("chat-state");
  var seen = {};
  list.querySelectorAll("li[data-id]").forEach(function (li) { seen[li.dataset.id] = true; });

  function actions(m) {
    var html = template ? template.innerHTML : "";
    var node = document.createElement("span");
    // The template's placeholders are replaced by ids (UUIDs) and an escaped username.
    var safeName = String((m.user && m.user.username) || "").replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; });
    node.innerHTML = html.split("MESSAGE_ID").join(m.id).split("USER_ID").join((m.user && m.user.id) || "").split("USERNAME").join(safeName);
    return node.firstElementChild;
  }
  function render(m) {
    if (!m || !m.id || seen[m.id]) return;
    seen[m.id] = true;
    var own = m.user && m.user.id === root.dataset.ownerId;
    list.appendChild(HB.chatLine(m, own ? null : actions(m)));
    list.scrollTop = list.scrollHeight;
  }
  function setStatus(s) {
    if (!statusEl) return;
    statusEl.dataset.status = s;
    statusEl.textContent = s === "live" ? d.tLive : d.tOffline;
  }

  HB.room({
    streamId: streamId,
    signedIn: true,
    onJoin: function (ack) {
      (ack.messages || []).forEach(render);
      root.dataset.chatReady = "true";
    },
    onMessage: render,
    onState: function (s) {
      if (!state) return;
      state.hidden = s !== "disconnected";
      state.textContent = s === "disconnected" ? d.tReconnecting : "";
    },
    on: {
      message_deleted: function (e) {
        var li = list.querySelector('li[data-id="' + e.message_id + '"]');
        if (li) li.remove();
      },
      gift_received: function (e) {
        if (!feed) return;
        var li = document.createElement("li");
        li.dataset.sender = (e.sender && e.sender.username) || "";
        li.textContent = HB.fmt(d.tGift, { user: e.sender && e.sender.username, gift: e.gift && e.gift.name, count: e.quantity });
        feed.insertBefore(li, feed.firstChild);
      },
      viewer_count_changed: function (e) { if (viewers) viewers.textContent = HB.fmt(d.tViewers, { count: e.viewer_count }); },
      stream_started: function () { setStatus("live"); },
      stream_ended: function () { setStatus("offline"); }
    }
  });

  function duration(total) {
    var s = Math.max(0, Math.floor(total)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + ":" + two(m) + ":" + two(r) : m + ":" + two(r);
  }
  var health = document.getElementById("health");
  if (health && d.runs === "true") {
    var refresh = function () {
      HB.api("GET", health.dataset.api).then(function (res) {
        if (!res.ok || !res.data) return;
        health.querySelectorAll("dd[data-k]").forEach(function (dd) {
          var v = res.data[dd.dataset.k];
          var shown;
          if (typeof v === "boolean") shown = v ? d.tYes : d.tNo;
          else if (v === null || v === undefined) shown = "—";
          else if (dd.dataset.format === "duration") shown = duration(v);
          else if (typeof v === "number" && dd.dataset.unit) shown = Math.round(v) + dd.dataset.unit;
          else shown = dd.getAttribute("data-t-" + v) || String(v);
          dd.textContent = shown;
        });
        if (res.data.live !== undefined) setStatus(res.data.live ? "live" : "offline");
      });
    };
    setInterval(refresh, 5000);
  }
})();
