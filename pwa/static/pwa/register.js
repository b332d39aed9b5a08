// Registers the service worker on every page (sign-in included), so the app is installable
// from the first visit. Loaded as an external script: the CSP forbids inline ones.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((error) => {
      console.warn("service worker registration failed", error);
    });
  });
}

// Signing out forgets the saved field app page and the customer data kept on this device
// (records not yet sent stay, and go when the same user signs in again).
document.addEventListener("submit", (event) => {
  const form = event.target;
  // The attribute, not form.action: a form with a field named "action" (the lists' bulk
  // action box) shadows the property with that field, which has no endsWith.
  if (!(form instanceof HTMLFormElement)) return;
  const target = new URL(form.getAttribute("action") || "", window.location.href);
  if (!target.pathname.endsWith("/logout")) return;
  if (form.dataset.cleared) return;
  event.preventDefault();
  const forget = [];
  if ("caches" in window) forget.push(caches.delete("rapport-v1-pages"));
  if ("indexedDB" in window) {
    forget.push(new Promise((resolve) => {
      const request = indexedDB.open("rapport-field", 1);
      request.onupgradeneeded = () => request.transaction.abort();
      request.onerror = () => resolve();
      request.onsuccess = () => {
        const db = request.result;
        try {
          const tx = db.transaction("meta", "readwrite");
          tx.objectStore("meta").delete("snapshot");
          tx.objectStore("meta").delete("synced_at");
          tx.oncomplete = tx.onerror = tx.onabort = () => { db.close(); resolve(); };
        } catch (error) { db.close(); resolve(); }
      };
    }));
  }
  Promise.all(forget).finally(() => { form.dataset.cleared = "1"; form.submit(); });
});
