// HaloBuzz: small progressive enhancements shared by every page (no inline scripts; CSP 'self').
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  window.HaloBuzz = {
    csrf: meta ? meta.getAttribute("content") : "",
    // A short-lived access token for this page session (for the API and Socket.IO).
    token: function () {
      return fetch("/web/token", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": window.HaloBuzz.csrf } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) { return body ? body.access_token : null; });
    },
    api: function (method, path, token, body, extra) {
      var headers = Object.assign({ "Content-Type": "application/json" }, extra || {});
      if (token) headers.Authorization = "Bearer " + token;
      return fetch("/api/v1" + path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
        .then(function (r) { return r.text().then(function (t) { var data = t ? JSON.parse(t) : null; return { ok: r.ok, status: r.status, data: data }; }); });
    }
  };
  document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
})();
