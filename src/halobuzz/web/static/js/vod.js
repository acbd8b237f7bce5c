// A past broadcast: its recorded HLS playlist in the same player.
(function () {
  "use strict";
  var root = document.getElementById("vod");
  if (!root) return;
  var player = window.HaloBuzz.player({
    media: document.getElementById("media"),
    status: document.getElementById("player-status"),
    qualityWrap: document.getElementById("quality-wrap"),
    quality: document.getElementById("quality"),
    autoplay: false
  });
  player.start(root.dataset.hlsUrl);
})();
