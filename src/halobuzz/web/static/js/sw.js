// The service worker (served as /sw.js): shows web pushes and opens their page when clicked.
// A push's payload is {title, body, url, type, notification_id, data} (docs/notifications.md).
self.addEventListener("push", function (event) {
  var payload = {};
  try { payload = event.data ? event.data.json() : {}; } catch (e) { payload = { body: event.data ? event.data.text() : "" }; }
  // Only pages of this site are opened (the server sends its public URL).
  var url = "/notifications";
  try {
    var target = new URL(payload.url, self.location.origin);
    if (target.origin === self.location.origin) url = target.pathname + target.search;
  } catch (e) { url = "/notifications"; }
  event.waitUntil(self.registration.showNotification(payload.title || "HaloBuzz", {
    body: payload.body || "",
    icon: "/static/favicon.svg",
    tag: payload.notification_id || undefined,
    data: { url: url }
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "/notifications";
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (list) {
    for (var i = 0; i < list.length; i++) {
      if (list[i].url.indexOf(self.location.origin) === 0 && "focus" in list[i]) {
        return list[i].navigate(url).then(function (c) { return c && c.focus(); });
      }
    }
    return self.clients.openWindow(url);
  }));
});
