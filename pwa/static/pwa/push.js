// "Notify me on this device": subscribes with the instance's VAPID key and registers the
// subscription with the server. subscribe() may never settle when the browser's push service
// is unreachable, so it is raced against a timeout.
(function () {
  "use strict";
  const state = document.getElementById("push-state");
  const button = document.getElementById("push-subscribe");
  if (!state || !button) return;

  function csrf() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function keyBytes(base64url) {
    const padded = (base64url + "===".slice((base64url.length + 3) % 4))
      .replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function withTimeout(promise, ms, message) {
    return Promise.race([promise, new Promise((_, reject) => {
      setTimeout(() => reject(new Error(message)), ms);
    })]);
  }

  async function register(subscription) {
    const response = await fetch("/api/v1/push/subscriptions", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrftoken": csrf() },
      body: JSON.stringify(subscription.toJSON()),
    });
    if (!response.ok) throw new Error(`the server refused the device (${response.status})`);
  }

  async function subscribe() {
    button.disabled = true;
    state.textContent = "Asking for permission…";
    try {
      const permission = await Notification.requestPermission();
      if (permission !== "granted") throw new Error("notifications are blocked for this site");
      const registration = await navigator.serviceWorker.ready;
      const key = (await (await fetch("/api/v1/push/key")).json()).public_key;
      const subscription = await withTimeout(registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: keyBytes(key),
      }), 20000, "the browser's push service did not answer");
      await register(subscription);
      state.textContent = "This device receives notifications.";
      window.location.reload();
    } catch (error) {
      state.textContent = `Could not turn notifications on: ${error.message}`;
      button.disabled = false;
    }
  }

  async function init() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      state.textContent = "This browser cannot receive notifications.";
      return;
    }
    const registration = await navigator.serviceWorker.ready;
    const existing = await withTimeout(registration.pushManager.getSubscription(), 5000, "timeout")
      .catch(() => null);
    if (existing) {
      await register(existing).catch(() => null); // keep the server's copy current
      state.textContent = "This device receives notifications.";
    } else {
      state.textContent = "This device does not receive notifications yet.";
      button.hidden = false;
    }
  }

  button.addEventListener("click", subscribe);
  init();
})();
