// The notifications page: when a new one arrives over the socket (see bell.js), offer to reload.
(function () {
  "use strict";
  var note = document.getElementById("notif-new");
  if (!note) return;
  document.addEventListener("hb:notification", function () { note.hidden = false; });
})();
