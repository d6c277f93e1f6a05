// Zones page: polls /api/v1/zones and redraws. No framework, no CDN: works offline.
"use strict";
let lang = new URLSearchParams(location.search).get("lang") || document.body.dataset.lang || "zh-CN";
let T = {};

const t = (k) => T[k] || k;
const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
// times show on the site's clock (site.timezone from /api/v1/zones), as reports and trace pages do, not the browser's
let siteTz;
const time = (ts) => (ts ? new Date(ts * 1000).toLocaleString(lang, siteTz ? { timeZone: siteTz } : {}) : "–");
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

async function loadTexts() {
  T = await (await fetch(`/api/v1/messages/${lang}`)).json();
  document.documentElement.lang = lang;
  document.title = t("page.title");
  document.getElementById("lang").textContent = t("page.language");
  document.querySelectorAll("[data-t]").forEach((n) => (n.textContent = t(n.dataset.t)));
}

function zoneCard(z) {
  const card = el("section", `zone ${z.state}`);
  card.dataset.zone = z.id;
  const h = el("h2");
  h.append(el("span", null, z.name), el("span", `badge ${z.state}`, t(`state.${z.state}`)));
  card.append(h);
  const c = z.commodity;
  if (c) {
    const range = `${fmt(c.temp_min)}…${fmt(c.temp_max)} °C` + (c.rh_min !== null ? `, ${fmt(c.rh_min, 0)}…${fmt(c.rh_max, 0)} %RH` : "");
    card.append(el("div", "meta", `${t("page.commodity")}: ${c.name} · ${t("page.range")} ${range}`));
  }
  for (const s of z.sensors) {
    const row = el("div", "sensor");
    row.dataset.sensor = s.id;
    const temp = s.readings.temperature, hum = s.readings.humidity;
    const v = el("span", "value", temp ? `${fmt(temp.quality === "good" ? temp.value : null)} °C` : "–");
    if (hum && hum.quality === "good") v.append(el("small", null, `${fmt(hum.value, 0)} %RH`));
    const right = el("span", s.online ? "meta" : "offline", s.online ? `${s.name || s.id} · ${time(s.last_ts)}` : `${s.name || s.id} · ${t("page.offline")}`);
    row.append(v, right);
    const badge = window.deviceBadge && window.deviceBadge(s, t);  // device.js: battery, signal
    if (badge) row.append(badge);
    card.append(row);
  }
  const chart = charts[z.id];
  if (chart) card.append(chart.svg);
  const ul = el("ul", "alerts");
  for (const a of z.alerts.filter((a) => a.state !== "pending")) {
    const li = el("li", null, `#${a.id} ${a.kind_text} ${a.value !== null ? fmt(a.value) : ""} · ${t("page.since")} ${time(a.started)}${a.detail ? " · " + a.detail : ""}`);
    li.dataset.alert = a.id;
    if (a.reescalated_text) li.append(el("span", "reescalated", ` · ${a.reescalated_text}`));
    if (a.state === "firing") li.append(ackForm(a));
    if (a.state === "acknowledged") li.append(el("span", "acked", ` · ${t("state.acknowledged")} ${a.acked_by || ""}`));
    ul.append(li);
  }
  card.append(ul);
  const report = el("button", "report", t("page.report"));
  report.type = "button";
  report.dataset.report = z.id;
  report.onclick = () => openReport(z.id, report);
  card.append(report);
  return card;
}

// Today's compliance report (PDF) of a room; reports need a manager's sign-in, so it is fetched, not linked.
async function openReport(zone, button) {
  const r = await ccApi(`/api/v1/reports/compliance?zone=${encodeURIComponent(zone)}&period=day&format=pdf&lang=${encodeURIComponent(lang)}`);
  if (!r.ok) {
    button.textContent = `${t("page.report")} (${r.status})`;
    return;
  }
  window.open(URL.createObjectURL(await r.blob()), "_blank");
}

// What happened after each alarm fired: acknowledged, corrective actions, closed (HACCP). Staff record an
// action once it is acknowledged (or over); a manager closes it once it is back in range and has an action.
const KINDS = ["moved", "discarded", "kept_after_check", "other"];
async function post(url, body) {
  const r = await ccApi(`${url}?lang=${encodeURIComponent(lang)}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${t("page.ack_failed")} (${r.status}) ${data.detail || ""}`);
  return data;
}

function actionForm(a) {
  const form = el("form", "ack action");
  const kind = el("select");
  kind.name = "kind";
  for (const k of KINDS) {
    const o = el("option", null, t(`action.${k}`));
    o.value = k;
    kind.append(o);
  }
  const text = el("input");
  text.name = "text";
  text.required = true;
  text.placeholder = t("page.action_text");
  const button = el("button", null, t("page.record_action"));
  button.type = "submit";
  button.dataset.action = a.id;
  form.append(kind, text, button);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    historyDo(() => post(`/api/v1/alerts/${a.id}/action`, { kind: kind.value, text: text.value }));
  });
  return form;
}

async function historyDo(fn) {
  document.getElementById("history-error").textContent = "";
  try {
    await fn();
    document.activeElement.blur();
    await refreshHistory();
  } catch (e) {
    document.getElementById("history-error").textContent = String(e.message || e);
  }
}

async function historyItem(a) {
  const li = el("li", a.closed ? "closed" : null);
  li.dataset.history = a.id;
  const detail = await (await ccApi(`/api/v1/alerts/${a.id}?lang=${encodeURIComponent(lang)}`)).json();
  const state = a.closed ? t("state.closed") : t(`state.${a.state}`);
  li.append(el("div", null, `#${a.id} ${a.kind_text} · ${time(a.started)} · ${state}`));
  const ack = detail.events.find((e) => e.state === "acknowledged");
  if (ack) li.append(el("div", "meta", `${t("state.acknowledged")}: ${ack.who} ${time(ack.ts)} ${ack.comment || ""}`));
  for (const x of detail.actions) li.append(el("div", "meta", `${t("page.action")}: ${x.kind_text}: ${x.text} (${x.who} ${time(x.ts)})`));
  if (a.closed) li.append(el("div", "meta", `${t("state.closed")}: ${a.closed_by} ${time(a.closed)}`));
  const open = !a.closed && (a.acked || a.state === "resolved");
  if (open) li.append(actionForm(a));
  if (!a.closed && a.state === "resolved" && detail.actions.length) {
    const close = el("button", null, t("page.close"));
    close.type = "button";
    close.dataset.close = a.id;
    close.onclick = () => historyDo(() => post(`/api/v1/alerts/${a.id}/close`, {}));
    li.append(close);
  }
  return li;
}

async function refreshHistory() {
  const active = document.activeElement;
  if (active && active.closest("#history form")) return;  // someone is typing an action
  const rows = (await (await ccApi(`/api/v1/alerts?fired=true&limit=10&lang=${encodeURIComponent(lang)}`)).json()).alerts;
  document.getElementById("history-list").replaceChildren(...(await Promise.all(rows.map(historyItem))));
}

// Acknowledge from the page, signed in (session.js: a 401 goes to the sign-in page and back here).
const comments = {};
function ackForm(a) {
  const form = el("form", "ack");
  const comment = el("input");
  comment.name = "comment";
  comment.placeholder = t("page.ack_comment");  // the server says when a comment is required (422)
  comment.value = comments[a.id] || "";
  comment.addEventListener("input", () => (comments[a.id] = comment.value));
  const button = el("button", null, t("page.ack"));
  button.type = "submit";
  button.dataset.ack = a.id;
  const msg = el("span", "ack-error");
  form.append(comment, button, msg);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await ccApi(`/api/v1/alerts/${a.id}/ack?lang=${encodeURIComponent(lang)}`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ comment: comment.value || null }),
    }).catch(() => null);
    if (r === null) return;  // gone to the sign-in page
    if (r.ok) {
      delete comments[a.id];
      document.activeElement.blur();
      await refresh();
    } else {
      // 422: the site requires a comment; 403: the role may not
      msg.textContent = ` ${r.status === 422 ? t("page.ack_comment") : t("page.ack_failed")} (${r.status})`;
    }
  });
  return form;
}

// The last 24 h of each room, downsampled by the server, with the storage range dashed.
const charts = {};
const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function drawChart(z, series, start, end) {
  const W = 320, H = 90, P = 4;
  const pts = series.flatMap((s) => s.rows.map((r) => r[2]));
  const lim = [z.limits.temp_low, z.limits.temp_high].filter((v) => v !== null && v !== undefined);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": t("page.last_24h") });
  svg.append(svgEl("title", {}));
  svg.firstChild.textContent = t("page.last_24h");
  if (!pts.length) return svg;
  let lo = Math.min(...pts, ...lim), hi = Math.max(...pts, ...lim);
  if (hi - lo < 1) { lo -= 0.5; hi += 0.5; }
  const x = (ts) => P + ((ts - start) / (end - start)) * (W - 2 * P);
  const y = (v) => H - P - ((v - lo) / (hi - lo)) * (H - 2 * P);
  for (const v of lim) {
    svg.append(svgEl("line", { x1: P, x2: W - P, y1: y(v), y2: y(v), class: "limit" }));
    const label = svgEl("text", { x: W - P, y: y(v) - 2, class: "limit-label" });
    label.textContent = `${fmt(v)}`;
    svg.append(label);
  }
  for (const s of series) {
    const line = s.rows.map((r) => `${x(r[0]).toFixed(1)},${y(r[2]).toFixed(1)}`).join(" ");
    svg.append(svgEl("polyline", { points: line, class: "series" }));
  }
  return svg;
}

async function loadCharts(zones, now) {
  for (const z of zones) {
    const c = charts[z.id];
    if (c && now - c.at < 60) continue;
    const start = now - 86400;
    const q = `zone=${encodeURIComponent(z.id)}&quantity=temperature&start=${start}&end=${now}&max_points=300`;
    const data = await (await ccApi(`/api/v1/history?${q}`)).json();
    charts[z.id] = { at: now, svg: drawChart(z, data.series, start, now) };
  }
}

// Upload state from /healthz: is the regional InfluxDB reachable, and how much waits on the box.
const ago = (s) => (s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);
async function refreshUplinks() {
  const health = await (await fetch("/healthz")).json();
  const lines = (health.uplinks || []).map((u) => {
    const state = u.connected === false ? t("page.uplink_down") : t("page.uplink_ok");
    const backlog = u.lag_readings > 0 ? " · " + t("page.backlog").replace("{n}", u.lag_readings).replace("{age}", ago(u.lag_seconds)) : "";
    return `${t("page.uplink")} ${u.sink}: ${state}${backlog}`;
  });
  const el = document.getElementById("uplinks");
  el.textContent = lines.join(" · ");
  el.className = (health.uplinks || []).some((u) => u.connected === false) ? "offline" : "";
}

async function refresh() {
  // do not redraw under someone typing a comment, or pressing a form's button
  const active = document.activeElement;
  if (active && (active.tagName === "INPUT" || active.closest("form"))) return;
  try {
    const data = await (await ccApi(`/api/v1/zones?lang=${encodeURIComponent(lang)}`)).json();
    siteTz = data.site.timezone;
    await loadCharts(data.zones, data.time);
    document.getElementById("site").textContent = `${data.site.name} · ${t("page.title")}`;
    document.getElementById("zones").replaceChildren(...data.zones.map(zoneCard));
    document.getElementById("updated").textContent = time(data.time);
    document.getElementById("box").textContent = (data.site.alerts || [])
      .map((a) => `${t("page.box")}: ${a.detail || a.kind_text}`).join(" · ");
    await refreshUplinks();
    await refreshHistory();
  } catch (e) {
    document.getElementById("updated").textContent = String(e);
  }
}

document.getElementById("lang").addEventListener("click", async () => {
  lang = lang === "zh-CN" ? "en" : "zh-CN";
  await loadTexts();
  await refresh();
});

loadTexts().then(refresh);
setInterval(refresh, 2000);
