// Rapport's service worker, served at /sw.js with scope "/".
// - keeps the app shell and static files so the field app opens offline;
// - pages: network first, the saved copy when offline, else the offline page;
// - uploads the outbox on Background Sync (the page also does it on "online" and on open);
// - shows Web Push notifications and opens the record when one is clicked.
/* global FieldStore */
importScripts("/static/pwa/field-store.js");

const VERSION = "rapport-v1";
const SHELL_CACHE = `${VERSION}-shell`;
const PAGE_CACHE = `${VERSION}-pages`;
const PRECACHE = [
  "/field/offline",
  "/static/css/rapport.css",
  "/static/js/rapport.js",
  "/static/vendor/htmx.min.js",
  "/static/pwa/register.js",
  "/static/pwa/field-store.js",
  "/static/pwa/field.js",
  "/static/pwa/field.css",
  "/static/pwa/offline.js",
  "/manifest.webmanifest",
  "/pwa/icons/any-192.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    // One missing file must not stop the worker installing (the app stays installable).
    await Promise.all(PRECACHE.map((url) => cache.add(url).catch(() => null)));
    // The field app itself, when this browser is signed in: the first visit on a new phone
    // happens before the worker controls the page, so no navigation would have saved it.
    await keepFieldShell();
    await self.skipWaiting();
  })());
});

// Saves the signed-in field app page ("/field/") for offline use; a redirect (to sign in) or
// an error is not saved, and a failure never stops the caller.
async function keepFieldShell() {
  try {
    const response = await fetch("/field/", { credentials: "same-origin", cache: "no-store" });
    if (response.ok && !response.redirected) {
      await (await caches.open(PAGE_CACHE)).put("/field/", response);
      return true;
    }
  } catch (error) { /* offline: the next visit tries again */ }
  return false;
}

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => !n.startsWith(VERSION)).map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

function isFieldPage(url) {
  return url.pathname === "/field/" || url.pathname === "/field";
}

async function pageResponse(request) {
  const url = new URL(request.url);
  try {
    const response = await fetch(request);
    // Keep a copy of the field app shell (signed in, not a redirect to sign-in).
    if (isFieldPage(url) && response.ok && !response.redirected) {
      const cache = await caches.open(PAGE_CACHE);
      await cache.put("/field/", response.clone());
    }
    return response;
  } catch (error) {
    const cache = await caches.open(PAGE_CACHE);
    const saved = (isFieldPage(url) && await cache.match("/field/")) || await caches.match(request);
    if (saved) return saved;
    return (await caches.match("/field/offline")) || Response.error();
  }
}

async function staticResponse(request) {
  // Stale-while-revalidate: answer from the cache at once, refresh it behind the scenes.
  const cache = await caches.open(SHELL_CACHE);
  const saved = await cache.match(request);
  const refresh = fetch(request).then((response) => {
    if (response.ok) cache.put(request, response.clone());
    return response;
  }).catch(() => null);
  return saved || (await refresh) || Response.error();
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(pageResponse(request));
  } else if (url.pathname.startsWith("/static/") || url.pathname.startsWith("/pwa/icons/")
             || url.pathname === "/manifest.webmanifest") {
    event.respondWith(staticResponse(request));
  }
  // The API is never answered from a cache: the page keeps its data in IndexedDB.
});

self.addEventListener("sync", (event) => {
  if (event.tag === "field-outbox") {
    event.waitUntil(FieldStore.flush().then(() => notifyClients({ type: "outbox-changed" })));
  }
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "flush") {
    event.waitUntil(FieldStore.flush().then(() => notifyClients({ type: "outbox-changed" })));
  }
  if (event.data && event.data.type === "keep-field-shell") {
    // The field app asks on every open: saved once, then kept fresh by navigations.
    event.waitUntil((async () => {
      if (!(await (await caches.open(PAGE_CACHE)).match("/field/"))) await keepFieldShell();
    })());
  }
});

async function notifyClients(message) {
  const windows = await self.clients.matchAll({ type: "window" });
  for (const client of windows) client.postMessage(message);
}

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (error) {
    data = { title: "Rapport", body: event.data ? event.data.text() : "" };
  }
  const title = data.title || "Rapport";
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || "",
    tag: data.tag || undefined,
    icon: "/pwa/icons/any-192.png",
    badge: "/pwa/icons/any-192.png",
    data: { url: data.url || "/field/" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/field/",
                         self.location.origin);
  if (target.origin !== self.location.origin) return; // only ever open our own pages
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (client.url === target.href && "focus" in client) return client.focus();
    }
    return self.clients.openWindow(target.href);
  })());
});
