// Zones page: polls /api/v1/zones and redraws. No framework, no CDN: works offline.
"use strict";
let lang = document.body.dataset.lang || "zh-CN";
let T = {};

const t = (k) => T[k] || k;
const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
const time = (ts) => (ts ? new Date(ts * 1000).toLocaleString(lang) : "–");
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
    card.append(row);
  }
  const ul = el("ul", "alerts");
  for (const a of z.alerts.filter((a) => a.state !== "pending")) {
    ul.append(el("li", null, `#${a.id} ${a.kind_text} ${a.value !== null ? fmt(a.value) : ""} · ${t("page.since")} ${time(a.started)}${a.detail ? " · " + a.detail : ""}`));
  }
  card.append(ul);
  return card;
}

async function refresh() {
  try {
    const data = await (await fetch(`/api/v1/zones?lang=${encodeURIComponent(lang)}`)).json();
    document.getElementById("site").textContent = `${data.site.name} · ${t("page.title")}`;
    document.getElementById("zones").replaceChildren(...data.zones.map(zoneCard));
    document.getElementById("updated").textContent = time(data.time);
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
