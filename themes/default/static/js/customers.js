// Customer lists and forms: select-all, the bulk action's value field, confirmations.
// No inline scripts (the CSP forbids them); htmx swaps call setup again.
(function () {
  function showBulkValue(form) {
    const action = form.querySelector("#bulk-action");
    if (!action) return;
    form.querySelectorAll(".bulk-value").forEach((box) => {
      const active = box.dataset.for === action.value;
      box.hidden = !active;
      box.querySelectorAll("input, select").forEach((el) => { el.disabled = !active; });
    });
  }

  // The bulk-action box takes room above the rows: show it only while some are selected.
  function showBulkBox(form) {
    const box = form.querySelector("[data-needs-selection]");
    if (box) box.hidden = !form.querySelector('input[name="ids"]:checked');
  }

  function setup(root) {
    const form = root.querySelector ? root.querySelector("#bulk-form") : null;
    if (form && !form.dataset.ready) {
      form.dataset.ready = "1";
      const all = form.querySelector("#select-all");
      if (all) {
        all.addEventListener("change", () => {
          form.querySelectorAll('input[name="ids"]').forEach((box) => { box.checked = all.checked; });
          showBulkBox(form);
        });
      }
      form.addEventListener("change", () => showBulkBox(form));
      showBulkBox(form);
      const action = form.querySelector("#bulk-action");
      if (action) action.addEventListener("change", () => showBulkValue(form));
      showBulkValue(form);
      form.addEventListener("submit", (event) => {
        if (!form.querySelector('input[name="ids"]:checked')) {
          event.preventDefault();
          window.alert("Select at least one row first.");
        }
      });
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });
  // The list's extra filters are folded by the template itself (open only when in use).
  document.addEventListener("DOMContentLoaded", () => setup(document));
  document.addEventListener("htmx:afterSettle", (event) => setup(event.target.parentNode || document));
})();
