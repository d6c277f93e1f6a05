// Texts come from the box (/api/v1/messages/{lang}, daemon/messages/*.json): the code names only keys.
export const state = { lang: "zh-CN", tz: undefined, texts: {} };

export function t(key, params) {
  let s = state.texts[key] || key;
  for (const [k, v] of Object.entries(params || {})) s = s.replaceAll(`{${k}}`, v);
  return s;
}

export async function loadTexts(lang) {
  state.lang = lang;
  state.texts = await (await fetch(`/api/v1/messages/${encodeURIComponent(lang)}`)).json();
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-t]").forEach((n) => (n.textContent = t(n.dataset.t)));
}

export const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits));
// the site's clock (site.timezone), as reports show it, not the browser's
export const when = (ts) => (ts ? new Date(ts * 1000).toLocaleString(state.lang, { timeZone: state.tz, hour12: false }) : "–");

export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k in e && k !== "list") e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// Site-local wall time <-> epoch: <input type="datetime-local"> speaks the browser's zone, the box the site's.
export function tzOffsetMin(ts) {
  const d = new Date(ts * 1000);
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: state.tz, hourCycle: "h23",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
    .formatToParts(d).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  return Math.round((asUtc - d.getTime()) / 60000);
}
export const localInput = (ts) => new Date((ts + tzOffsetMin(ts) * 60) * 1000).toISOString().slice(0, 16);
