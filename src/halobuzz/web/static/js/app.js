// HaloBuzz: small progressive enhancements shared by every page (no inline scripts; CSP 'self').
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var cached = null;
  var cachedAt = 0;
  var HB = {
    csrf: meta ? meta.getAttribute("content") : "",
    // A short-lived access token for this page session (for the API and Socket.IO), reused for a
    // few minutes; `fresh` asks for a new one (after a 401).
    token: function (fresh) {
      if (!fresh && cached && Date.now() - cachedAt < 5 * 60 * 1000) return Promise.resolve(cached);
      return fetch("/web/token", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": HB.csrf } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          cached = body ? body.access_token : null;
          cachedAt = Date.now();
          return cached;
        })
        .catch(function () { return null; });
    },
    // Call the API with the page's token; one retry with a fresh token after a 401.
    api: function (method, path, body, extra) {
      function send(token) {
        var headers = Object.assign({ "Content-Type": "application/json" }, extra || {});
        if (token) headers.Authorization = "Bearer " + token;
        return fetch("/api/v1" + path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
          .then(function (r) {
            return r.text().then(function (t) {
              var data = null;
              try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
              return { ok: r.ok, status: r.status, data: data };
            });
          });
      }
      return HB.token().then(send).then(function (res) {
        return res.status === 401 ? HB.token(true).then(send) : res;
      });
    },
    // "{user} sent {gift}" with values; missing values stay empty.
    fmt: function (template, values) {
      return String(template || "").replace(/\{(\w+)\}/g, function (_m, k) { return values[k] === undefined ? "" : String(values[k]); });
    },
    errorText: function (res) {
      return res && res.data && res.data.error ? res.data.error.message || res.data.error.code : "error";
    },
    uuid: function () {
      if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
      return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
    }
  };
  window.HaloBuzz = HB;
  document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
})();
