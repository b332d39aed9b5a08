// The top bar's search suggestions: keyboard use (arrows, Escape) and open/closed state;
// "/" anywhere outside a field jumps to the search box, as in most web apps.
(() => {
  const input = document.getElementById("topsearch-q");
  const box = document.getElementById("topsearch-suggestions");
  if (!input || !box) return;
  const options = () => Array.from(box.querySelectorAll("[role=option]"));
  const setOpen = (open) => {
    box.classList.toggle("open", open);
    input.setAttribute("aria-expanded", open ? "true" : "false");
  };
  const close = () => { setOpen(false); };
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target === box) setOpen(options().length > 0 && input.value.trim() !== "");
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && options().length) {
      event.preventDefault(); setOpen(true); options()[0].focus();
    } else if (event.key === "Escape") { close(); }
  });
  box.addEventListener("keydown", (event) => {
    const list = options();
    const index = list.indexOf(document.activeElement);
    if (event.key === "ArrowDown") {
      event.preventDefault(); (list[index + 1] || list[0]).focus();
    } else if (event.key === "ArrowUp") {
      event.preventDefault(); (index <= 0 ? input : list[index - 1]).focus();
    } else if (event.key === "Escape") {
      event.preventDefault(); close(); input.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".topsearch")) close();
  });
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, textarea, select, [contenteditable]");
    if (event.key !== "/" || typing || event.ctrlKey || event.metaKey || event.altKey) return;
    event.preventDefault();
    input.focus();
    input.select();
  });
})();
