// Registers the service worker on every page (sign-in included), so the app is installable
// from the first visit. Loaded as an external script: the CSP forbids inline ones.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((error) => {
      console.warn("service worker registration failed", error);
    });
  });
}
