// The field app: views drawn from the snapshot kept on the device (IndexedDB), so it works the
// same offline. Records made here go to the outbox (field-store.js) and are uploaded when the
// connection allows: at once when online, by Background Sync, on "online" and on open.
/* global FieldStore */
(function () {
  "use strict";
  const app = document.getElementById("field-app");
  if (!app) return;
  const view = document.getElementById("field-view");
  const REFRESH_MS = 5 * 60 * 1000;
  let snapshot = null;
  let here = null; // the device's position, when the user allowed it

  // --- small helpers ------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(...nodes) {
    // A view may pass a list (the card's plugin panels) among its nodes: spread it too, or
    // replaceChildren prints it as "[object HTMLElement],...".
    view.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined));
    view.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }

  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  function localDay() {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  }

  function distanceKm(a, b) {
    const rad = (d) => (d * Math.PI) / 180;
    const dLat = rad(b.lat - a.lat);
    const dLng = rad(b.lng - a.lng);
    const h = Math.sin(dLat / 2) ** 2
      + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLng / 2) ** 2;
    return 12742 * Math.asin(Math.sqrt(h));
  }

  function customer(id) {
    return (snapshot && snapshot.customers.find((c) => String(c.id) === String(id))) || null;
  }

  // --- status bar -----------------------------------------------------------------------------
  async function refreshStatus() {
    const online = navigator.onLine;
    const pill = document.getElementById("field-online");
    pill.textContent = online ? "Online" : "Offline";
    pill.className = `field-pill ${online ? "ok" : "off"}`;
    const synced = await FieldStore.getMeta("synced_at");
    document.getElementById("field-last-synced").textContent =
      synced ? `Last synced ${when(synced)}` : "Not synced yet";
    const items = await FieldStore.allItems();
    const waiting = items.filter((i) => i.status !== "sent" && i.user_id === app.dataset.userId).length;
    document.getElementById("field-outbox-count").textContent = String(waiting);
  }

  // --- data: the snapshot and the outbox ------------------------------------------------------
  async function loadSnapshot() {
    snapshot = (await FieldStore.getMeta("snapshot")) || null;
  }

  async function refreshSnapshot() {
    if (!navigator.onLine) return false;
    try {
      const response = await fetch(`/api/v1/field/snapshot?day=${localDay()}`,
                                   { credentials: "same-origin", headers: { accept: "application/json" } });
      if (response.status === 401) {
        notice("You are signed out: sign in again to refresh your data.", true);
        return false;
      }
      if (!response.ok) return false;
      snapshot = await response.json();
      await FieldStore.setMeta("snapshot", snapshot);
      await FieldStore.setMeta("synced_at", new Date().toISOString());
      return true;
    } catch (error) {
      return false; // offline or flaky: keep what the device has
    }
  }

  async function syncNow() {
    if (navigator.onLine) {
      await FieldStore.flush();
      await refreshSnapshot();
    }
    await refreshStatus();
    if (!location.hash.startsWith("#/log")) route(); // never wipe a form being filled in
  }

  async function queue(kind, payload) {
    const item = await FieldStore.enqueue(kind, payload);
    try {
      const registration = await navigator.serviceWorker.ready;
      if (registration.sync) await registration.sync.register("field-outbox");
    } catch (error) { /* Background Sync unsupported: "online" and open cover it */ }
    await refreshStatus();
    if (navigator.onLine) syncNow();
    return item;
  }

  function notice(text, isError) {
    const box = el("p", { class: `flash ${isError ? "error" : "ok"}`, role: isError ? "alert" : "status" }, text);
    view.prepend(box);
  }

  // --- views ----------------------------------------------------------------------------------
  function agendaView() {
    if (!snapshot) {
      return show(el("p", { class: "empty" }, "Nothing saved on this device yet. Connect once to load your day."));
    }
    const items = snapshot.agenda || [];
    show(
      el("h1", {}, "Today"),
      items.length
        ? el("ul", { class: "field-list" }, items.map((item) => el("li", {},
            el("a", { class: "field-row", href: item.url },
              el("span", { class: `field-kind kind-${item.kind}` }, item.kind.replace("_", "-")),
              el("span", { class: "field-row-main" },
                el("strong", {}, item.title),
                item.detail ? el("span", { class: "muted" }, item.detail) : null),
              item.starts_at ? el("time", { datetime: item.starts_at },
                new Date(item.starts_at).toLocaleTimeString([], { timeStyle: "short" })) : null))))
        : el("p", { class: "empty" }, "Nothing planned today."),
    );
  }

  function customersView() {
    if (!snapshot) return agendaView();
    let list = snapshot.customers.slice();
    if (here) {
      const far = Number.POSITIVE_INFINITY;
      list.forEach((c) => { c._km = c.lat !== null && c.lng !== null ? distanceKm(here, c) : far; });
      list.sort((a, b) => a._km - b._km || a.name.localeCompare(b.name));
    }
    const filter = el("input", { id: "field-filter", type: "search", placeholder: "Name…", autocomplete: "off" });
    const rows = el("ul", { class: "field-list", id: "field-customers" });
    const draw = () => {
      const q = filter.value.trim().toLowerCase();
      rows.replaceChildren(...list.filter((c) => !q || c.name.toLowerCase().includes(q)).map((c) =>
        el("li", {}, el("a", { class: "field-row", href: `#/customers/${c.id}` },
          el("span", { class: "field-row-main" }, el("strong", {}, c.name),
            el("span", { class: "muted" }, c.address || c.phone_display || c.phone || "")),
          here && c._km !== Number.POSITIVE_INFINITY ? el("span", { class: "field-distance" }, `${c._km.toFixed(1)} km`) : null))));
      if (!rows.children.length) rows.append(el("li", { class: "empty" }, "No customers."));
    };
    filter.addEventListener("input", draw);
    draw();
    show(
      el("h1", {}, "My customers"),
      el("label", { for: "field-filter" }, "Find"), filter,
      el("p", {}, el("button", { type: "button", class: "secondary field-big", onclick: nearMe },
        here ? "Sorted by distance" : "Sort by distance from me")),
      rows,
    );
  }

  function nearMe() {
    if (!navigator.geolocation) return notice("This device cannot tell where it is.", true);
    navigator.geolocation.getCurrentPosition(
      (pos) => { here = { lat: pos.coords.latitude, lng: pos.coords.longitude }; customersView(); },
      () => notice("Location is not allowed; customers stay in name order.", true),
      { enableHighAccuracy: false, timeout: 10000, maximumAge: 300000 });
  }

  async function customerView(id) {
    const c = customer(id);
    if (!c) return show(el("p", { class: "empty" }, "This customer is not on this device."));
    const pending = (await FieldStore.allItems()).filter(
      (i) => i.kind === "interaction" && String(i.payload.customer_id) === String(c.id) && i.status !== "sent");
    const mapQuery = c.lat !== null && c.lng !== null ? `${c.lat},${c.lng}` : c.address;
    show(
      el("h1", {}, c.name),
      el("p", { class: "muted" }, [c.stage, c.address].filter(Boolean).join(" · ")),
      el("div", { class: "field-actions" },
        c.phone ? el("a", { class: "button field-big", href: `tel:${c.phone}` }, `Call ${c.phone_display || c.phone}`) : null,
        mapQuery ? el("a", { class: "button secondary field-big", rel: "noopener", target: "_blank",
          href: `https://www.openstreetmap.org/search?query=${encodeURIComponent(mapQuery)}` }, "Open in maps") : null,
        c.email ? el("a", { class: "button secondary field-big", href: `mailto:${c.email}` }, "Email") : null),
      el("div", { class: "field-actions" },
        el("a", { class: "button field-big", href: `#/log/${c.id}/visit` }, "Visit report"),
        el("a", { class: "button secondary field-big", href: `#/log/${c.id}/call` }, "Log interaction")),
      el("h2", {}, "Follow-ups"),
      (c.follow_ups || []).length ? el("ul", { class: "field-list" }, c.follow_ups.map((f) => el("li", { class: "field-row" },
        el("span", { class: "field-row-main" }, el("strong", {}, when(f.due)), el("span", {}, f.note || f.subject)),
        el("button", { type: "button", class: "secondary", onclick: () => followUpDone(c, f) }, "Done")))) : el("p", { class: "muted" }, "No open follow-ups."),
      el("h2", {}, "Last interactions"),
      el("ul", { class: "field-list", id: "field-timeline" },
        pending.map((i) => el("li", { class: "field-row pending" }, el("span", { class: "field-row-main" },
          el("strong", {}, i.label), el("span", { class: "muted" }, `${when(i.created_at)} · waiting to sync`)))),
        (c.interactions || []).map((i) => el("li", { class: "field-row" }, el("span", { class: "field-row-main" },
          el("strong", {}, `${i.channel}: ${i.subject || i.outcome || ""}`),
          el("span", { class: "muted" }, `${when(i.occurred_at)}${i.outcome ? ` · ${i.outcome}` : ""}`))))),
      (c.panels || []).map((p) => {
        const box = el("section", { class: "card field-panel" }, el("h2", {}, p.title));
        if (p.html) box.insertAdjacentHTML("beforeend", p.html); // server-rendered, escaped there
        else if (p.url) lazyPanel(box, p);
        return box;
      }),
    );
  }

  // A plugin panel that loads on demand (as on the 360 view): its fragment when online, else
  // a word that it needs the connection. The fragment is server-rendered and escaped there.
  function lazyPanel(box, p) {
    const body = el("div", { class: "field-panel-body" }, el("p", { class: "muted" }, "Loading…"));
    box.append(body);
    if (!navigator.onLine) {
      body.replaceChildren(el("p", { class: "muted" }, "Shown when you are online."));
      return;
    }
    fetch(p.url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => { body.innerHTML = html; if (window.htmx) window.htmx.process(body); })
      .catch(() => body.replaceChildren(el("p", { class: "muted" }, "Could not load this part now.")));
  }

  async function followUpDone(c, f) {
    await queue("follow_up", { interaction_id: f.interaction_id, done: true,
                               base_updated_at: f.updated_at, label: `Follow-up done: ${c.name}` });
    c.follow_ups = c.follow_ups.filter((x) => x !== f);
    await FieldStore.setMeta("snapshot", snapshot);
    customerView(c.id);
  }

  function signaturePad(canvas) {
    const ctx = canvas.getContext("2d");
    ctx.lineWidth = 3; ctx.lineCap = "round"; ctx.strokeStyle = "#1b1f24";
    let drawing = false; let signed = false;
    const point = (e) => {
      const r = canvas.getBoundingClientRect();
      return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
    };
    canvas.addEventListener("pointerdown", (e) => { drawing = true; ctx.beginPath(); ctx.moveTo(...point(e)); canvas.setPointerCapture(e.pointerId); });
    canvas.addEventListener("pointermove", (e) => { if (drawing) { ctx.lineTo(...point(e)); ctx.stroke(); signed = true; } });
    canvas.addEventListener("pointerup", () => { drawing = false; });
    return {
      clear() { ctx.clearRect(0, 0, canvas.width, canvas.height); signed = false; },
      value() { return signed ? canvas.toDataURL("image/png") : null; },
    };
  }

  async function photoData(file) {
    // Shrunk on the device: a phone photo becomes ~200 KB, which an offline queue can hold.
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", 0.8);
  }

  function logView(id, mode) {
    const c = customer(id);
    if (!c) return show(el("p", { class: "empty" }, "This customer is not on this device."));
    const form = document.getElementById("field-log-form").content.firstElementChild.cloneNode(true);
    const visit = mode === "visit";
    form.querySelector(".field-title").textContent = `${visit ? "Visit report" : "Log interaction"}: ${c.name}`;
    form.elements.channel.value = visit ? "visit" : "call";
    const visitPart = form.querySelector(".field-visit-only");
    const pad = signaturePad(form.querySelector("canvas"));
    let checkIn = null;
    const syncVisit = () => { visitPart.hidden = form.elements.channel.value !== "visit"; };
    form.elements.channel.addEventListener("change", syncVisit);
    syncVisit();
    form.querySelector("[data-action=clear-signature]").addEventListener("click", () => pad.clear());
    form.querySelector("[data-action=check-in]").addEventListener("click", () => {
      const state = form.querySelector("[data-role=check-in-state]");
      const at = new Date().toISOString();
      state.textContent = "Finding where you are…";
      const done = (coords) => {
        checkIn = { at, lat: coords ? coords.latitude : null, lng: coords ? coords.longitude : null,
                    accuracy: coords ? coords.accuracy : null };
        state.textContent = `Checked in ${when(at)}${coords ? ` (±${Math.round(coords.accuracy)} m)` : " (no location)"}`;
      };
      if (!navigator.geolocation) return done(null);
      navigator.geolocation.getCurrentPosition((p) => done(p.coords), () => done(null),
                                               { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const notes = form.elements.notes.value.trim();
      const error = form.querySelector("#log-notes-error");
      error.hidden = Boolean(notes);
      form.elements.notes.setAttribute("aria-invalid", notes ? "false" : "true");
      if (!notes) return form.elements.notes.focus();
      const channel = form.elements.channel.value;
      const photos = [];
      if (channel === "visit") {
        for (const file of form.elements.photos.files) photos.push(await photoData(file));
      }
      const due = form.elements.followup_due.value;
      const label = `${channel === "visit" ? "Visit report" : channel}: ${c.name}`;
      await queue("interaction", {
        customer_id: c.id, channel, subject: form.elements.subject.value.trim(), notes,
        outcome: form.elements.outcome.value, occurred_at: new Date().toISOString(),
        follow_up: due ? { due: new Date(due).toISOString(), note: form.elements.followup_note.value.trim() } : null,
        photos, signature: channel === "visit" ? pad.value() : null,
        check_in: channel === "visit" ? checkIn : null, label,
      });
      location.hash = `#/customers/${c.id}`;
    });
    show(form);
  }

  async function syncView() {
    const items = (await FieldStore.allItems()).filter((i) => i.user_id === app.dataset.userId).sort((a, b) => b.created_at.localeCompare(a.created_at));
    const names = { queued: "Queued", sending: "Sending", failed: "Failed", sent: "Sent", conflict: "Conflict" };
    show(
      el("h1", {}, "Sync"),
      el("p", {}, el("button", { type: "button", class: "field-big", id: "field-sync-now", onclick: syncNow }, "Sync now")),
      items.length ? el("ul", { class: "field-list", id: "field-outbox" }, items.map((item) => el("li", {
        class: `field-row status-${item.status}`, "data-client-id": item.client_id, "data-status": item.status },
        el("span", { class: "field-row-main" },
          el("strong", {}, item.label),
          el("span", { class: "muted" }, `${names[item.status] || item.status} · ${when(item.created_at)}`),
          item.error ? el("span", { class: item.status === "failed" ? "field-error" : "muted" }, item.error) : null),
        item.status === "failed" ? el("button", { type: "button", class: "secondary",
          onclick: async () => { await FieldStore.retry(item.client_id); syncNow(); } }, "Retry") : null)))
        : el("p", { class: "empty" }, "Nothing recorded on this device yet."),
    );
  }

  function route() {
    const hash = location.hash || "#/";
    for (const tab of app.querySelectorAll(".field-tabs a")) {
      const active = (tab.dataset.tab === "agenda" && hash === "#/")
        || (tab.dataset.tab !== "agenda" && hash.startsWith(`#/${tab.dataset.tab}`));
      if (active) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
    }
    let m;
    if ((m = hash.match(/^#\/customers\/(\d+)/))) return customerView(m[1]);
    if ((m = hash.match(/^#\/log\/(\d+)\/(\w+)/))) return logView(m[1], m[2]);
    if (hash.startsWith("#/customers")) return customersView();
    if (hash.startsWith("#/sync")) return syncView();
    return agendaView();
  }

  // --- start ----------------------------------------------------------------------------------
  async function start() {
    if ((await FieldStore.getMeta("user_id")) !== app.dataset.userId) {
      // Another user signed in on this device: never show them the previous user's data.
      await FieldStore.setMeta("snapshot", null);
      await FieldStore.setMeta("synced_at", null);
      await FieldStore.setMeta("user_id", app.dataset.userId);
    }
    await FieldStore.setMeta("csrf", app.dataset.csrf);
    await loadSnapshot();
    route();
    await refreshStatus();
    await syncNow(); // on open: send what waits, then refresh the data
  }

  window.addEventListener("hashchange", route);
  window.addEventListener("online", syncNow);
  window.addEventListener("offline", refreshStatus);
  if (navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.type === "outbox-changed") { refreshStatus(); if (location.hash.startsWith("#/sync")) syncView(); }
    });
    // Ready offline from the first visit: the worker saves this page if it has no copy yet.
    navigator.serviceWorker.ready.then((registration) => {
      if (registration.active) registration.active.postMessage({ type: "keep-field-shell" });
    }).catch(() => null);
  }
  setInterval(() => { if (document.visibilityState === "visible") syncNow(); }, REFRESH_MS);
  start();
})();
