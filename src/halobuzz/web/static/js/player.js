// HLS playback for live streams and recordings: hls.js where Media Source Extensions exist
// (adaptive bitrate, a quality picker), the browser's own HLS otherwise.
(function () {
  "use strict";
  var HB = window.HaloBuzz;

  HB.player = function (opts) {
    var media = opts.media;
    var status = opts.status;
    var wrap = opts.qualityWrap;
    var picker = opts.quality;
    var hls = null;
    var current = null;

    function label(level) {
      if (level.height) return level.height + "p";
      return Math.round((level.bitrate || 0) / 1000) + " kbps";
    }
    function showLevels(levels) {
      if (!picker || !wrap) return;
      while (picker.options.length > 1) picker.remove(1);
      if (!levels || levels.length < 2) { wrap.hidden = true; return; }
      levels.forEach(function (level, i) {
        var opt = document.createElement("option");
        opt.value = String(i);
        opt.textContent = label(level);
        picker.appendChild(opt);
      });
      wrap.hidden = false;
    }
    if (picker) picker.addEventListener("change", function () { if (hls) hls.currentLevel = parseInt(picker.value, 10); });

    function play() {
      if (opts.autoplay === false) return;
      var p = media.play();
      if (p && p.catch) p.catch(function () { /* autoplay refused: the controls remain */ });
    }

    function stop(text) {
      if (hls) { hls.destroy(); hls = null; }
      current = null;
      media.removeAttribute("src");
      if (wrap) wrap.hidden = true;
      if (status) { status.hidden = !text; if (text) status.textContent = text; }
    }

    function start(url) {
      if (!url || url === current) return;
      stop("");
      current = url;
      if (window.Hls && window.Hls.isSupported()) {
        hls = new window.Hls(Object.assign({ liveDurationInfinity: true, backBufferLength: 30 }, opts.hlsConfig || {}));
        hls.on(window.Hls.Events.MANIFEST_PARSED, function (_e, data) {
          if (status) status.hidden = true;
          showLevels(data.levels);
          play();
        });
        hls.on(window.Hls.Events.ERROR, function (_e, data) {
          if (!data.fatal) return;
          if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) { hls.recoverMediaError(); return; }
          // A network failure (an expired playback token, the stream ending): ask again.
          var failed = current;
          stop(opts.waitingText || "");
          if (opts.onLost) opts.onLost(failed);
        });
        hls.loadSource(url);
        hls.attachMedia(media);
      } else if (media.canPlayType("application/vnd.apple.mpegurl")) {
        media.src = url;
        if (status) status.hidden = true;
        play();
      }
    }

    return { start: start, stop: stop, playing: function () { return current !== null; } };
  };
})();
