// Small behaviours shared by every staff page; no inline scripts (the CSP forbids them).
document.addEventListener("htmx:responseError", (event) => {
  const box = document.getElementById("flash") || document.body;
  const message = document.createElement("p");
  message.className = "flash error";
  message.setAttribute("role", "alert");
  message.textContent = `The server answered ${event.detail.xhr.status}: ${event.detail.xhr.statusText || "error"}`;
  box.prepend(message);
});
