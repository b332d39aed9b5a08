// Lists whose row checkboxes live outside the bulk form (form="ID"): the bulk-action box
// ([data-needs-selection] inside that form) shows only while some row is selected. Without
// JavaScript it simply stays visible. No inline scripts (CSP); htmx swaps are handled too.
(function () {
  function update() {
    document.querySelectorAll("form [data-needs-selection]").forEach((box) => {
      const form = box.closest("form");
      const picked = form.querySelector('input[name="ids"]:checked') ||
        (form.id && document.querySelector(`input[name="ids"][form="${form.id}"]:checked`));
      box.hidden = !picked;
    });
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches('input[name="ids"]')) update();
  });
  document.addEventListener("DOMContentLoaded", update);
  document.addEventListener("htmx:afterSettle", update);
})();
