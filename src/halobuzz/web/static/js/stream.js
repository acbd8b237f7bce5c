// The stream page: the live player (waits for the playlist, follows go-live and off-air), live
// chat with recovery after a dropped connection, chat modes, viewer counts, gifts and their
// animation, the throne holder. Without scripts the page still lists the chat history and sends
// gifts by form.
(function () {
  "use strict";
  var root = document.getElementById("stream");
  if (!root) return;
  var HB = window.HaloBuzz;
  var d = root.dataset;
  var streamId = d.streamId;
  var signedIn = d.signedIn === "true";
  var live = d.status === "live";

  // --- player ---------------------------------------------------------------------------
  var status = document.getElementById("player-status");
  var player = HB.player({
    media: document.getElementById("media"),
    status: status,
    qualityWrap: document.getElementById("quality-wrap"),
    quality: document.getElementById("quality"),
    waitingText: d.tWaiting,
    onLost: function () { later(2000); }
  });
  var timer = null;
  function later(ms) { if (!timer) timer = setTimeout(askPlayback, ms); }
  function askPlayback() {
    timer = null;
    if (!live || player.playing()) return;
    fetch(d.playback, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!live) return;
        if (body && body.url) player.start(body.url);
        else later(3000); // the publisher has not produced a playlist yet
      })
      .catch(function () { later(5000); });
  }

  // --- gifts ----------------------------------------------------------------------------
  var stage = document.getElementById("gift-stage");
  var giftError = document.getElementById("gift-error");
  var balance = document.getElementById("balance");
  function animateGift(gift) {
    if (!stage || !gift) return;
    var img = document.createElement("img");
    img.className = "gift-pop";
    img.alt = "";
    img.src = String(gift.animation_url || "").replace(/\.json$/, ".svg") || "/static/favicon.svg";
    img.addEventListener("animationend", function () { img.remove(); });
    stage.appendChild(img);
  }
  function setGiftButtons(enabled) {
    document.querySelectorAll("form.gift-form button").forEach(function (b) { b.disabled = !enabled; });
  }
  document.querySelectorAll("form.gift-form").forEach(function (giftForm) {
    giftForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = giftForm.querySelector("button");
      button.disabled = true;
      HB.api("POST", "/streams/" + streamId + "/gifts", { gift_id: giftForm.dataset.giftId, quantity: 1 }, { "Idempotency-Key": HB.uuid() })
        .then(function (res) {
          button.disabled = !live;
          if (giftError) { giftError.hidden = res.ok; giftError.textContent = res.ok ? "" : HB.errorText(res); }
          if (res.ok && balance) balance.textContent = String(res.data.balance);
        });
    });
  });

  // --- chat -----------------------------------------------------------------------------
  var list = document.getElementById("messages");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var errorBox = document.getElementById("chat-error");
  var state = document.getElementById("chat-state");
  var modesText = document.getElementById("modes-text");
  var viewers = document.getElementById("viewer-count");
  var seen = {};
  list.querySelectorAll("li[data-id]").forEach(function (li) { seen[li.dataset.id] = true; });

  function reportLink(m) {
    if (!signedIn || !m.user || m.user.id === d.me) return null;
    var a = document.createElement("a");
    a.className = "report";
    a.textContent = d.tReport;
    a.href = "/report?" + new URLSearchParams({
      target_type: "message", target_id: m.id, label: (m.user.username + ": " + m.text).slice(0, 100), next: "/streams/" + streamId
    }).toString();
    return a;
  }
  function render(m) {
    if (!m || !m.id || seen[m.id]) return;
    seen[m.id] = true;
    list.appendChild(HB.chatLine(m, reportLink(m)));
    list.scrollTop = list.scrollHeight;
  }
  function note(text) {
    var li = document.createElement("li");
    li.className = "system";
    li.textContent = text;
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }
  function showModes(modes) {
    if (!modesText || !modes) return;
    var parts = [];
    if (modes.slow_mode_seconds) parts.push(HB.fmt(d.tSlow, { seconds: modes.slow_mode_seconds }));
    if (modes.followers_only_minutes !== null && modes.followers_only_minutes !== undefined) parts.push(HB.fmt(d.tFollowers, { minutes: modes.followers_only_minutes }));
    if (modes.subscribers_only) parts.push(d.tSubscribers);
    if (modes.emote_only) parts.push(d.tEmote);
    modesText.textContent = parts.join(" · ") || d.tNone;
  }
  function showError(text) {
    if (!errorBox) return;
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }
  function showState(text) {
    if (!state) return;
    state.textContent = text || "";
    state.hidden = !text;
  }

  // --- throne (the stream's top gifter over the window) ---------------------------------
  var throne = document.getElementById("throne");
  function showThrone(e) {
    if (!throne) return;
    var holder = e && e.holder;
    var link = document.getElementById("throne-holder");
    var coins = document.getElementById("throne-coins");
    var empty = document.getElementById("throne-empty");
    link.hidden = coins.hidden = !holder;
    empty.hidden = !!holder;
    if (holder) {
      link.textContent = holder.display_name || holder.username;
      link.href = "/users/" + encodeURIComponent(holder.username);
      coins.textContent = HB.fmt(e.coins === 1 ? throne.dataset.tCoinsOne : throne.dataset.tCoins, { count: e.coins });
    }
    throne.dataset.holder = holder ? holder.id : "";
  }

  var room = HB.room({
    streamId: streamId,
    signedIn: signedIn,
    onJoin: function (ack) {
      if (!ack.recovered) {
        list.textContent = "";
        seen = {};
      }
      (ack.messages || []).forEach(render);
      root.dataset.recovered = String(!!ack.recovered);
      root.dataset.chatReady = "true";
      if (form) form.hidden = false;
    },
    onMessage: render,
    onState: function (s) {
      if (s === "joined") showState("");
      else if (s === "disconnected") { root.dataset.chatReady = "false"; showState(d.tReconnecting); }
    },
    on: {
      message_deleted: function (e) {
        var li = list.querySelector('li[data-id="' + e.message_id + '"]');
        if (li) li.remove();
      },
      chat_mode_changed: function (e) { showModes(e.modes); },
      throne_changed: showThrone,
      viewer_count_changed: function (e) { if (viewers) viewers.textContent = HB.fmt(d.tViewers, { count: e.viewer_count }); },
      gift_received: function (e) {
        animateGift(e.gift);
        note(HB.fmt(d.tGift, { user: e.sender && e.sender.username, gift: e.gift && e.gift.name, count: e.quantity }));
      },
      stream_started: function () {
        live = true;
        setGiftButtons(true);
        if (status) { status.hidden = false; status.textContent = d.tWaiting; }
        askPlayback();
      },
      stream_ended: function () {
        live = false;
        setGiftButtons(false);
        player.stop(d.tOffline);
      },
      session_ended: function () {
        // Signed out elsewhere (logout, password change, ban): show the page as it is now.
        showState(d.tSignedOut);
        window.location.reload();
      }
    }
  });

  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      room.send(text, function (ack) {
        if (ack.ok) {
          input.value = "";
          showError(ack.held ? d.tHeld : "");
          if (ack.message && !ack.held) render(ack.message);
        } else {
          showError(ack.error ? ack.error.message || ack.error.code : "error");
        }
      });
    });
  }

  askPlayback();
})();
