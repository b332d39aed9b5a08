// Live account/contact lists (core/live.py, /live/accounts and /live/contacts): the stream
// carries only ids the reader may see. Rows on this page that changed are marked, and a notice
// offers "N new, M changed — Refresh"; refreshing re-reads #results through the list's own
// permission-checked route with the URL's filters, so filters, scroll and focus stay put.
(function () {
  "use strict";

  function start() {
    var box = document.getElementById("live-list");
    if (!box || typeof EventSource === "undefined") {
      return;
    }
    var text = box.querySelector("[data-live-text]");
    var button = box.querySelector("button");
    var fresh = new Set();
    var changed = new Set();
    var imported = 0; // an import says how many new customers, never their ids
    var importedMore = false; // ...and whether there were more than it counted
    var missed = false; // the server was cut off from its live updates for a while

    function rowsOnPage() {
      var rows = {};
      document.querySelectorAll("#results tr[data-id]").forEach(function (row) {
        rows[row.dataset.id] = row;
      });
      return rows;
    }

    function render() {
      var parts = [];
      if (fresh.size + imported) {
        parts.push((fresh.size + imported) + (importedMore ? "+" : "") + " new");
      }
      if (changed.size) { parts.push(changed.size + " changed"); }
      if (!parts.length && !missed) {
        box.hidden = true;
        return;
      }
      text.textContent = parts.length ? parts.join(", ") + " since you opened this page."
        : "This list may have changed since you opened this page.";
      box.hidden = false;
    }

    var source = new EventSource(box.dataset.liveList);
    source.addEventListener("ready", function () { box.dataset.liveReady = "1"; });
    source.addEventListener("change", function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      var rows = rowsOnPage();
      imported += message.new || 0;
      importedMore = importedMore || Boolean(message.more);
      (message.ids || []).forEach(function (id) {
        id = String(id);
        if (rows[id]) {
          changed.add(id);
          rows[id].classList.add("live-stale");
        } else if (message.event === "core.customer.created") {
          fresh.add(id);
        }
      });
      (message.gone || []).forEach(function (id) {
        id = String(id);
        if (rows[id]) {
          changed.add(id);
          rows[id].classList.add("live-stale");
        }
        fresh.delete(id);
      });
      render();
    });
    source.addEventListener("resync", function () {
      missed = true;
      render();
    });
    window.addEventListener("pagehide", function () { source.close(); });

    button.addEventListener("click", function () {
      missed = false;
      fresh.clear();
      changed.clear();
      imported = 0;
      importedMore = false;
      render();
      if (window.htmx) {
        window.htmx.ajax("GET", window.location.pathname + window.location.search,
                         {target: "#results", swap: "innerHTML"});
      } else {
        window.location.reload();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
