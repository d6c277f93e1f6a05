// Lots page for staff: check a lot in, move it, check it out; ship, split, merge, attach a logger's trip.
// Signed in as on the rooms page (session.js: the session cookie, X-CSRF-Token on writes, 401 -> sign-in).
"use strict";
let lang = new URLSearchParams(location.search).get("lang") || document.body.dataset.lang || "zh-CN";
let T = {};
let zones = [];
let commodities = {};  // catalog key -> name in the page's language
const t = (k) => T[k] || k;
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
// times show on the site's clock (site.timezone from /api/v1/zones), not the browser's
let siteTz;
const time = (ts) => (ts ? new Date(ts * 1000).toLocaleString(lang, siteTz ? { timeZone: siteTz } : {}) : "–");

async function call(method, url, body) {
  const r = await ccApi(url, {
    method, headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${t("page.lot_failed")} (${r.status}) ${data.detail || ""}`);
  return data;
}

function row(lot) {
  const tr = el("tr");
  tr.dataset.lot = lot.code;
  const link = el("a", null, lot.code);
  link.href = `/trace/${encodeURIComponent(lot.code)}?lang=${encodeURIComponent(lang)}`;
  const zoneName = (zones.find((z) => z.id === lot.zone) || { name: lot.zone }).name;
  const move = el("select");
  move.name = "move";
  for (const z of zones) {
    const o = el("option", null, z.name);
    o.value = z.id;
    o.selected = z.id === lot.zone;
    move.append(o);
  }
  const moveBtn = el("button", null, t("page.move"));
  moveBtn.dataset.move = lot.code;
  moveBtn.onclick = () => act(() => call("POST", `/api/v1/lots/${encodeURIComponent(lot.code)}/move`, { zone: move.value, at: changedAt() }));
  const outBtn = el("button", null, t("page.check_out"));
  outBtn.dataset.checkout = lot.code;
  outBtn.onclick = () => act(() => call("POST", `/api/v1/lots/${encodeURIComponent(lot.code)}/checkout`, { at: changedAt() }));
  const name = lot.commodity_name || commodities[lot.commodity] || lot.commodity;
  const cells = [[link], [el("span", null, name)], [el("span", null, zoneName)],
    [el("span", null, `${lot.quantity ?? ""} ${lot.unit || ""}`)], [el("span", null, time(lot.created))], [move, moveBtn, outBtn]];
  cells.forEach((parts, i) => {
    const td = el("td", i === cells.length - 1 ? "actions" : null);
    td.append(...parts);
    tr.append(td);
  });
  return tr;
}

// The time a move or check-out happened, if staff enter it later (empty: now); the site's time zone.
const changedAt = () => document.getElementById("lot-at").value || null;

async function act(fn) {
  const err = document.getElementById("lots-error");
  err.textContent = "";
  try {
    await fn();
    await refresh();
  } catch (e) {
    err.textContent = String(e.message || e);
  }
}

async function refresh() {
  const table = document.getElementById("lots");
  try {
    const data = await call("GET", `/api/v1/lots?in_storage=true&lang=${encodeURIComponent(lang)}`);
    const head = el("tr");
    for (const k of ["page.lot_code", "page.lot_commodity", "page.lot_zone", "page.lot_quantity", "page.lot_since"]) {
      head.append(el("th", null, t(k)));
    }
    table.replaceChildren(head, ...data.lots.map(row));
    await refreshRuns();
    document.getElementById("lots-error").textContent = "";
    if (!data.lots.length) table.append(el("tr", null, t("page.no_lots")));
  } catch (e) {
    document.getElementById("lots-error").textContent = String(e.message || e);
  }
}

// Precooling runs (docs/precooling.md): open runs with their figures, start one in a room, stop one.
const mins = (sec) => (sec === null || sec === undefined ? "–" : sec < 5400 ? `${Math.round(sec / 60)} min` : `${(sec / 3600).toFixed(1)} h`);

function runRow(run) {
  const f = run.figures || {};
  const tr = el("tr");
  tr.dataset.run = run.id;
  const zoneName = (zones.find((z) => z.id === run.zone) || { name: run.zone }).name;
  const half = f.half_s ?? f.predicted_half_s;
  const seven = f.seven_eighths_s ?? f.predicted_seven_eighths_s;
  const state = f.too_slow ? t("page.precool_too_slow") : t(`precool.state_${f.state || "waiting"}`);
  const stop = el("button", null, t("page.precool_stop"));
  stop.dataset.stop = run.id;
  stop.onclick = () => act(() => call("POST", `/api/v1/precool/${run.id}/stop`));
  const cells = [zoneName, run.lot || "–", time(run.started), f.y === null || f.y === undefined ? "–" : f.y.toFixed(2),
    mins(half), mins(seven), mins(run.target_s), state + (f.reason ? ` (${f.reason})` : "")];
  for (const c of cells) tr.append(el("td", c === state ? (f.too_slow ? "bad" : null) : null, c));
  const td = el("td", "actions");
  td.append(stop);
  tr.append(td);
  return tr;
}

async function refreshRuns() {
  const table = document.getElementById("precool-runs");
  try {
    const data = await call("GET", "/api/v1/precool?open_only=true");
    const head = el("tr");
    for (const k of ["page.lot_zone", "page.lot_code", "precool.started", "page.precool_y", "precool.half",
      "precool.seven_eighths", "precool.target", "page.precool_state"]) head.append(el("th", null, t(k)));
    table.replaceChildren(head, ...data.runs.map(runRow));
  } catch (e) {
    document.getElementById("precool-error").textContent = String(e.message || e);
  }
}

async function init() {
  T = await (await fetch(`/api/v1/messages/${lang}`)).json();
  document.documentElement.lang = lang;
  document.title = t("page.lots");
  document.querySelectorAll("[data-t]").forEach((n) => (n.textContent = t(n.dataset.t)));
  const zdata = await (await ccApi(`/api/v1/zones?lang=${encodeURIComponent(lang)}`)).json();
  zones = zdata.zones;
  siteTz = zdata.site.timezone;
  const catalog = (await (await ccApi(`/api/v1/commodities?lang=${encodeURIComponent(lang)}`)).json()).commodities;
  const form = document.getElementById("checkin");
  for (const c of catalog) {
    commodities[c.key] = c.name;
    const o = el("option", null, c.name);
    o.value = c.key;
    form.commodity.append(o);
  }
  for (const z of zones) {
    const o = el("option", null, z.name);
    o.value = z.id;
    form.zone.append(o);
  }
  const fill = () => {
    const z = zones.find((x) => x.id === form.zone.value);
    if (z && z.commodity) form.commodity.value = z.commodity.key;
  };
  form.zone.addEventListener("change", fill);
  fill();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = document.getElementById("checkin-error");
    err.textContent = "";
    try {
      await call("POST", "/api/v1/lots", {
        code: form.code.value.trim(), zone: form.zone.value, commodity: form.commodity.value, at: form.at.value || null,
        quantity: form.quantity.value === "" ? null : Number(form.quantity.value),
        unit: form.unit.value || null, origin: form.origin.value || null, source: form.source.value.trim() || null,
      });
      form.code.value = "";
      form.at.value = "";
      await refresh();
    } catch (e) {
      err.textContent = String(e.message || e);
    }
  });
  const pre = document.getElementById("precool-start");
  for (const z of zones) {
    const o = el("option", null, z.name);
    o.value = z.id;
    pre.zone.append(o);
  }
  pre.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = document.getElementById("precool-error");
    err.textContent = "";
    try {
      await call("POST", "/api/v1/precool", { zone: pre.zone.value, lot: pre.lot.value.trim() || null,
        at: pre.at.value || null });
      pre.lot.value = "";
      pre.at.value = "";
      await refresh();
    } catch (e) {
      err.textContent = String(e.message || e);
    }
  });
  transfers();
  await refresh();
}

// "A-1:200, A-2:300" -> [{code, quantity}]; a child without ":qty" has no quantity.
const children = (text) => text.split(/[,，]/).map((s) => s.trim()).filter(Boolean).map((s) => {
  const [code, qty] = s.split(/[:：]/);
  return { code: code.trim(), quantity: qty === undefined || qty.trim() === "" ? null : Number(qty) };
});

// Each transfer form posts its action; the lot list refreshes, errors show the server's message.
function transfers() {
  const enc = encodeURIComponent;
  const forms = {
    ship: (f) => call("POST", `/api/v1/lots/${enc(f.code.value.trim())}/checkout`,
      { destination: f.destination.value.trim(), at: changedAt() }),
    split: (f) => call("POST", `/api/v1/lots/${enc(f.code.value.trim())}/split`,
      { children: children(f.children.value), at: changedAt() }),
    merge: (f) => call("POST", "/api/v1/lots/merge",
      { codes: f.codes.value.split(/[,，]/).map((s) => s.trim()).filter(Boolean), code: f.code.value.trim(), at: changedAt() }),
    transit: async (f) => {
      const file = f.file.files[0];
      const r = await ccApi(`/api/v1/lots/${enc(f.code.value.trim())}/transit?filename=${enc(file.name)}`, {
        method: "POST", body: await file.text() });
      const data = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(`${t("page.lot_failed")} (${r.status}) ${data.detail || ""}`);
      document.getElementById("transfers-done").textContent =
        t("page.transit_done").replace("{readings}", data.readings).replace("{logger}", data.logger);
      return data;
    },
  };
  for (const [id, send] of Object.entries(forms)) {
    const f = document.getElementById(id);
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const err = document.getElementById("transfers-error");
      err.textContent = "";
      try {
        await send(f);
        f.reset();
        await refresh();
      } catch (e) {
        err.textContent = String(e.message || e);
      }
    });
  }
}

init();
