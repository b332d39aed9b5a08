// The device's offline store, shared by the field app page and the service worker
// (importScripts): the last snapshot (agenda, customers) and the outbox of everything recorded
// on the device, in IndexedDB. Works in a window and in a worker (no DOM use here).
(function (global) {
  "use strict";
  const DB_NAME = "rapport-field";
  const DB_VERSION = 1;
  const SYNC_URL = "/api/v1/field/sync";
  const KEEP_DONE = 30; // sent items kept so the user can see what went

  function open() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
        if (!db.objectStoreNames.contains("outbox")) {
          db.createObjectStore("outbox", { keyPath: "client_id" });
        }
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  async function run(storeName, mode, work) {
    const db = await open();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(storeName, mode);
        const store = tx.objectStore(storeName);
        let result;
        Promise.resolve(work(store)).then((value) => { result = value; });
        tx.oncomplete = () => resolve(result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  }

  function req(request) {
    return new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  const getMeta = (key) => run("meta", "readonly", (s) => req(s.get(key)));
  const setMeta = (key, value) => run("meta", "readwrite", (s) => { s.put(value, key); });
  const allItems = () => run("outbox", "readonly", (s) => req(s.getAll()));
  const putItem = (item) => run("outbox", "readwrite", (s) => { s.put(item); });
  const getItem = (id) => run("outbox", "readonly", (s) => req(s.get(id)));
  const deleteItem = (id) => run("outbox", "readwrite", (s) => { s.delete(id); });

  function newId() {
    if (global.crypto && global.crypto.randomUUID) return global.crypto.randomUUID();
    const bytes = new Uint8Array(16);
    global.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // Queue a record made on the device. It keeps its client id for ever, so a retried or
  // replayed upload is recognised by the server and never creates a duplicate.
  async function enqueue(kind, payload) {
    const item = {
      client_id: payload.client_id || newId(),
      user_id: await getMeta("user_id"), // sent only in this user's session
      kind,
      payload,
      status: "queued",
      error: "",
      attempts: 0,
      created_at: new Date().toISOString(),
      label: payload.label || kind,
    };
    item.payload.client_id = item.client_id;
    await putItem(item);
    return item;
  }

  async function sendOne(item, csrf) {
    item.status = "sending";
    item.attempts += 1;
    await putItem(item);
    let response;
    try {
      response = await fetch(SYNC_URL, {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrftoken": csrf || "" },
        body: JSON.stringify({ kind: item.kind, ...item.payload }),
      });
    } catch (error) {
      // No connection: keep it queued; it goes when the connection returns.
      item.status = "queued";
      item.error = "Waiting for a connection";
      await putItem(item);
      return false;
    }
    let body = {};
    try { body = await response.json(); } catch (error) { body = {}; }
    if (response.ok) {
      item.status = body.status === "conflict" ? "conflict" : "sent";
      item.error = body.message || "";
      item.result = body;
      item.sent_at = new Date().toISOString();
      delete item.payload.photos; // the server has them; free the device's storage
      delete item.payload.signature;
    } else if (response.status === 401) {
      item.status = "failed";
      item.error = "Signed out: sign in again, then retry";
    } else if (response.status >= 500) {
      item.status = "queued";
      item.error = `The server answered ${response.status}; will try again`;
    } else {
      item.status = "failed";
      item.error = body.detail || `Refused by the server (${response.status})`;
    }
    await putItem(item);
    return response.ok;
  }

  async function flushUnlocked() {
    const csrf = await getMeta("csrf");
    const user = await getMeta("user_id");
    // Items another user recorded on this device wait until that user signs in again.
    const items = (await allItems()).filter((i) => i.user_id === user)
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
    let sent = 0;
    for (const item of items) {
      if (item.status !== "queued" && item.status !== "sending") continue;
      const ok = await sendOne(item, csrf);
      if (ok) sent += 1;
      else if (item.status === "queued") break; // offline: the rest would fail too
    }
    const done = items.filter((i) => i.status === "sent")
      .sort((a, b) => (b.sent_at || "").localeCompare(a.sent_at || ""));
    for (const old of done.slice(KEEP_DONE)) await deleteItem(old.client_id);
    if (sent) await setMeta("last_upload", new Date().toISOString());
    return sent;
  }

  // Send every queued item, oldest first. One sender at a time across tabs and the worker.
  function flush() {
    if (global.navigator && global.navigator.locks) {
      return global.navigator.locks.request("rapport-field-outbox", flushUnlocked);
    }
    return flushUnlocked();
  }

  async function retry(clientId) {
    const item = await getItem(clientId);
    if (!item) return;
    item.status = "queued";
    item.error = "";
    await putItem(item);
  }

  global.FieldStore = {
    open, getMeta, setMeta, allItems, getItem, putItem, deleteItem, enqueue, flush, retry, newId,
  };
})(self);
