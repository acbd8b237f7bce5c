// The bell in the header: the unread count, drawn by the server and kept up to date from the
// user's own Socket.IO room (`notification` events). On every (re)connection the count is read
// again (pushes are at most once, and one may arrive before the socket is open). Pages may listen for "hb:notification" on the document.
(function () {
  "use strict";
  var HB = window.HaloBuzz;
  var bell = document.getElementById("bell");
  if (!HB || !bell || !window.io) return;
  var count = document.getElementById("bell-count");
  var live = document.getElementById("bell-live");
  var d = bell.dataset;

  function show(n) {
    d.unread = String(n);
    count.textContent = String(n);
    count.hidden = n === 0;
    bell.setAttribute("aria-label", n === 1 ? d.tOne : HB.fmt(d.tMany, { count: n }));
  }
  function refresh() {
    HB.api("GET", "/notifications/unread-count").then(function (res) {
      if (res.ok && res.data) show(Number(res.data.unread_count) || 0);
    });
  }
  function attach(socket) {
    if (!socket) return;
    socket.on("notification", function (item) {
      show((Number(d.unread) || 0) + 1);
      if (live) live.textContent = d.tNew;
      document.dispatchEvent(new CustomEvent("hb:notification", { detail: item }));
    });
    // Read the count again on every (re)connection: what arrived while no socket was open.
    socket.on("connect", refresh);
    if (socket.connected) refresh();
    socket.on("connect_error", function () {
      HB.token(true).then(function (t) { if (t) socket.auth = { token: t }; });
    });
  }

  if (HB.sharedSocket) {
    HB.sharedSocket.then(attach);
    return;
  }
  HB.token().then(function (token) {
    if (!token) return;
    attach(window.io({ auth: { token: token }, transports: ["websocket", "polling"] }));
  });
})();
