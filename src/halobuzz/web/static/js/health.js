// The admin overview's live sparklines: request rate, server errors, chat messages and open
// connections, sampled every 5 seconds from this instance's counters and drawn as SVG lines.
(function () {
  "use strict";
  var section = document.getElementById("live-chart");
  if (!section) return;
  var d = section.dataset;
  var NS = "http://www.w3.org/2000/svg";
  var W = 300, H = 60, KEEP = 60;
  var series = [
    { key: "requests", label: d.tRps, rate: true, points: [] },
    { key: "errors", label: d.tErrors, rate: true, points: [] },
    { key: "chat_messages", label: d.tChat, rate: true, points: [] },
    { key: "connections", label: d.tConn, rate: false, points: [] }
  ];
  var wrap = document.createElement("div");
  wrap.className = "charts";
  section.appendChild(wrap);
  series.forEach(function (s) {
    var fig = document.createElement("figure");
    fig.className = "chart spark";
    var cap = document.createElement("figcaption");
    var value = document.createElement("strong");
    cap.textContent = s.label + ": ";
    cap.appendChild(value);
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("width", "100%");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", s.label);
    var line = document.createElementNS(NS, "polyline");
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#5ee0a0");
    line.setAttribute("stroke-width", "2");
    svg.appendChild(line);
    fig.appendChild(cap);
    fig.appendChild(svg);
    wrap.appendChild(fig);
    s.line = line;
    s.value = value;
  });
  var last = null;
  function draw(s) {
    var max = Math.max.apply(null, s.points.concat([1]));
    var step = W / (KEEP - 1);
    var start = KEEP - s.points.length;
    s.line.setAttribute("points", s.points.map(function (v, i) {
      return ((start + i) * step).toFixed(1) + "," + (H - 2 - (v / max) * (H - 4)).toFixed(1);
    }).join(" "));
    var current = s.points.length ? s.points[s.points.length - 1] : 0;
    s.value.textContent = s.rate ? current.toFixed(1) + "/s" : String(Math.round(current));
  }
  function sample() {
    fetch(d.url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (now) {
        if (!now) return;
        series.forEach(function (s) {
          var v;
          if (s.rate) {
            if (!last) return;
            var dt = Math.max(now.at - last.at, 0.001);
            v = Math.max(0, (now[s.key] - last[s.key]) / dt);
          } else {
            v = now[s.key];
          }
          s.points.push(v);
          if (s.points.length > KEEP) s.points.shift();
          draw(s);
        });
        last = now;
        section.dataset.samples = String((parseInt(section.dataset.samples || "0", 10) || 0) + 1);
      })
      .catch(function () { /* the next sample tries again */ });
  }
  sample();
  setInterval(sample, 5000);
})();
