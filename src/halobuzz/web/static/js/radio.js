// A radio channel's page: its live audio in the shared player, the listener URL renewed before it
// expires (every later playlist and segment request uses the new token, so playback never stops),
// and "now playing" and the listener count read from the channel every few seconds. The player
// starts once the channel plays something (the playout writes its playlists before it says so).
(function () {
  "use strict";
  var root = document.getElementById("radio");
  if (!root) return;
  var HB = window.HaloBuzz;
  var cid = root.dataset.channelId;
  var nowEl = document.getElementById("now-playing");
  var countEl = document.getElementById("listener-count");
  var POLL_MS = 10000;
  var RENEW_EARLY_MS = 60000;
  var token = null; // the newest listener token
  var latest = null; // the newest listener URL and expiry
  var onAir = root.dataset.playing === "true";
  var renewTimer = null;
  var TOKEN_IN_URL = /(\/media\/radio\/[^/]+\/)([^/]+)(\/)/;

  function tokenOf(url) {
    var m = TOKEN_IN_URL.exec(url || "");
    return m ? m[2] : null;
  }

  var player = HB.player({
    media: document.getElementById("media"),
    status: document.getElementById("player-status"),
    waitingText: root.dataset.tWaiting,
    hlsConfig: {
      // Requests made from an older listener URL go out with the newest token.
      xhrSetup: function (xhr, url) {
        var old = tokenOf(url);
        if (token && old && old !== token) xhr.open("GET", url.replace(TOKEN_IN_URL, "$1" + token + "$3"), true);
      }
    },
    onLost: function () { window.setTimeout(function () { if (onAir) fetchPlayback(true); }, 2000); }
  });

  function schedule(expiresAt) {
    if (renewTimer) window.clearTimeout(renewTimer);
    var at = Date.parse(expiresAt || "");
    if (isNaN(at)) return;
    var wait = Math.max(5000, at - Date.now() - RENEW_EARLY_MS);
    renewTimer = window.setTimeout(function () { fetchPlayback(false); }, wait);
  }

  function use(body, restart) {
    if (!body || !body.url) return;
    latest = body;
    token = tokenOf(body.url);
    root.dataset.expiresAt = body.expires_at;
    schedule(body.expires_at);
    if (onAir && (restart || !player.playing())) player.start(body.url);
  }

  function fetchPlayback(restart) {
    var path = "/radio/channels/" + cid + "/playback";
    var asked = root.dataset.signedIn === "true"
      ? HB.api("GET", path)
      : fetch("/api/v1" + path).then(function (r) { return r.json().then(function (d) { return { ok: r.ok, data: d }; }); });
    return asked.then(function (res) {
      if (res.ok) use(res.data, restart);
      else schedule(new Date(Date.now() + RENEW_EARLY_MS + 10000).toISOString());
    }).catch(function () { schedule(new Date(Date.now() + RENEW_EARLY_MS + 10000).toISOString()); });
  }

  function listeners(count) {
    return count === 1 ? root.dataset.tListenersOne : HB.fmt(root.dataset.tListeners, { count: count });
  }

  function show(channel) {
    var np = channel.now_playing;
    var text = !np ? root.dataset.tSilent
      : HB.fmt(np.kind === "show" ? root.dataset.tShow : root.dataset.tTrack, { title: np.title });
    if (nowEl.textContent !== text) nowEl.textContent = text;
    root.dataset.nowPlaying = np ? np.kind : "";
    var was = onAir;
    onAir = !!np;
    if (onAir && !was && latest && !player.playing()) player.start(latest.url);
    var count = listeners(channel.listener_count || 0);
    if (countEl.textContent !== count) countEl.textContent = count;
    document.querySelectorAll("#track-list li").forEach(function (li) {
      if (np && np.track_id && li.dataset.trackId === np.track_id) li.setAttribute("aria-current", "true");
      else li.removeAttribute("aria-current");
    });
  }

  function poll() {
    fetch("/api/v1/radio/channels/" + cid)
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body) show(body); })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  if (root.dataset.hlsUrl) use({ url: root.dataset.hlsUrl, expires_at: root.dataset.expiresAt }, false);
  else fetchPlayback(false);
  window.setTimeout(poll, POLL_MS);
})();
