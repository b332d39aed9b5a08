// Live updates (core/live.py): an element with data-live="<server-sent events URL>" listens
// to that stream and, on each change, fires "live-change" on itself; its own hx-get and
// hx-trigger="live-change" then refresh just that part of the page.
(function () {
  "use strict";

  function connect(element) {
    if (element.dataset.liveConnected || typeof EventSource === "undefined") {
      return;
    }
    element.dataset.liveConnected = "1";
    var source = new EventSource(element.dataset.live);
    // Marks the element once subscribed, so a test (or a style) knows updates will arrive.
    source.addEventListener("ready", function () { element.dataset.liveReady = "1"; });
    function refresh() {
      if (!document.body.contains(element)) {
        source.close();
        return;
      }
      if (window.htmx) {
        window.htmx.trigger(element, "live-change");
      }
    }
    source.addEventListener("change", refresh);
    // The server lost its link to Redis or PostgreSQL for a while: changes may have been missed.
    source.addEventListener("resync", refresh);
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function scan(root) {
    if (root.matches && root.matches("[data-live]")) {
      connect(root);
    }
    if (root.querySelectorAll) {
      root.querySelectorAll("[data-live]").forEach(connect);
    }
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:load", function (event) { scan(event.target); });
})();
