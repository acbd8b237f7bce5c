// Web push for this browser: register the service worker (/sw.js), subscribe with the server's
// VAPID key and hand the subscription to the API; unsubscribe the same way.
(function () {
  "use strict";
  var HB = window.HaloBuzz;
  var root = document.getElementById("push");
  if (!HB || !root) return;
  var d = root.dataset;
  var state = document.getElementById("push-state");
  var button = document.getElementById("push-toggle");

  function say(text) { state.textContent = text; }
  function key(base64url) {
    var pad = "=".repeat((4 - (base64url.length % 4)) % 4);
    var raw = atob((base64url + pad).replace(/-/g, "+").replace(/_/g, "/"));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    say(d.tUnsupported);
    return;
  }
  var registration = null;
  function show(subscribed) {
    say(subscribed ? d.tOn : d.tOff);
    button.textContent = subscribed ? d.tDisable : d.tEnable;
    button.dataset.subscribed = subscribed ? "true" : "false";
    button.hidden = false;
    button.disabled = false;
  }
  function failed(err) {
    button.disabled = false;
    say(d.tFailed + (err ? " (" + (err.message || err) + ")" : ""));
  }
  function subscribe() {
    return Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") { say(d.tDenied); button.disabled = false; return; }
      return HB.api("GET", "/notifications/vapid-public-key").then(function (res) {
        if (!res.ok) throw new Error(HB.errorText(res));
        return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key(res.data.public_key) });
      }).then(function (sub) {
        return HB.api("POST", "/notifications/push-subscriptions", sub.toJSON()).then(function (res) {
          if (!res.ok) { sub.unsubscribe(); throw new Error(HB.errorText(res)); }
          show(true);
        });
      });
    });
  }
  function unsubscribe() {
    return registration.pushManager.getSubscription().then(function (sub) {
      if (!sub) { show(false); return; }
      return HB.api("DELETE", "/notifications/push-subscriptions", { endpoint: sub.endpoint }).then(function (res) {
        if (!res.ok && res.status !== 404) throw new Error(HB.errorText(res));
        return sub.unsubscribe().then(function () { show(false); });
      });
    });
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    (button.dataset.subscribed === "true" ? unsubscribe() : subscribe()).catch(failed);
  });
  navigator.serviceWorker.register("/sw.js", { scope: "/" })
    .then(function () { return navigator.serviceWorker.ready; })
    .then(function (reg) {
      registration = reg;
      return reg.pushManager.getSubscription();
    })
    .then(function (sub) { show(!!sub); })
    .catch(failed);
})();
