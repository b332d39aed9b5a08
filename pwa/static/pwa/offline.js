// The offline page: its button opens the field app only when this device has it saved;
// otherwise it says what to do instead of leading back to this same page.
(function () {
  "use strict";
  const button = document.getElementById("offline-field");
  const missing = document.getElementById("offline-field-missing");
  if (!button || !missing || !("caches" in window)) return;
  caches.match("/field/").then((saved) => {
    if (saved) return;
    button.hidden = true;
    missing.hidden = false;
  }).catch(() => null);
})();
