// Knowledge base suggestions on a case page: "Insert … in reply" puts the article's link or
// text into the reply box at the cursor. Delegated once, so fragments swapped in by htmx work.
(() => {
  if (window.rapportKbInsert) return;
  window.rapportKbInsert = true;
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-kb-insert]");
    if (!button) return;
    const box = document.querySelector(button.dataset.kbTarget || "[data-reply-body]")
      || document.querySelector("form textarea[name=body]");
    if (!box) return;
    const text = button.dataset.kbInsert;
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? box.value.length;
    const before = box.value.slice(0, start);
    const gap = before && !before.endsWith("\n") ? "\n\n" : "";
    box.value = before + gap + text + box.value.slice(end);
    box.focus();
    box.selectionStart = box.selectionEnd = (before + gap + text).length;
    box.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();
