// The manager's app: a hash router over three views (history, alarms, reports), the open-alarm banner and the
// language switch. Plain ES modules and uPlot, all served by the box: nothing is loaded from the internet.
import { loadSession, showWho, signOut, getJSON } from "./api.js";
import { el, loadTexts, state, t } from "./i18n.js";
import { historyView } from "./history.js";
import { alarmsView, alarmView } from "./alarms.js";
import { reportsView } from "./reports.js";

const VIEWS = { history: historyView, alarms: alarmsView, alarm: alarmView, reports: reportsView };
export const site = { zones: [], name: "", time: 0 };

// "#/history?zone=z1&range=7d" -> ["history", {zone: "z1", range: "7d"}]
export function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, arg] = path.split("/");
  return { name: VIEWS[name] ? name : "history", arg, params: Object.fromEntries(new URLSearchParams(query || "")) };
}

export function go(name, params) {
  const q = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v !== undefined && v !== "")).toString();
  const hash = `#/${name}${q ? "?" + q : ""}`;
  if (location.hash === hash) render();
  else location.hash = hash;
}

export async function loadSite() {
  const data = await getJSON(`/api/v1/zones?lang=${encodeURIComponent(state.lang)}`);
  state.tz = data.site.timezone;
  Object.assign(site, { zones: data.zones, name: data.site.name, time: data.time });
  document.getElementById("site").textContent = `${data.site.name} · ${t("app.title")}`;
  document.title = `${t("app.title")} · ${data.site.name}`;
  return site;
}

export const zoneName = (id) => (id === "_site" ? t("app.box") : (site.zones.find((z) => z.id === id) || { name: id }).name);

async function banner() {
  const box = document.getElementById("banner");
  try {
    const open = (await getJSON(`/api/v1/alerts?open=true&lang=${encodeURIComponent(state.lang)}`)).alerts
      .filter((a) => a.state === "firing");
    box.hidden = !open.length;
    box.replaceChildren(t("app.banner", { n: open.length }),
      el("a", { href: "#/alarms?state=firing" }, t("app.banner_view")));
    box.dataset.count = open.length;
  } catch {
    box.hidden = true;
  }
}

let rendering = 0;
export async function render() {
  const n = ++rendering;
  const r = route();
  document.querySelectorAll("header nav a[data-nav]").forEach((a) =>
    a.classList.toggle("on", a.dataset.nav === r.name || (r.name === "alarm" && a.dataset.nav === "alarms")));
  const view = document.getElementById("view");
  try {
    await loadSite();
    const node = await VIEWS[r.name](r.arg, r.params);
    if (n === rendering) {
      view.replaceChildren(node);
      if (node.mounted) node.mounted();
    }
  } catch (e) {
    if (n === rendering) view.replaceChildren(el("p", { class: "error" }, String(e.message || e)));
  }
  banner();
}

async function start() {
  const lang = new URLSearchParams(location.search).get("lang") || localStorage.getItem("coldchain-lang")
    || document.body.dataset.lang || "zh-CN";
  await Promise.all([loadTexts(lang), loadSession()]);  // independent: one round trip, not two
  showWho();
  document.getElementById("lang").textContent = state.texts["page.language"] || "EN";
  document.getElementById("lang").onclick = async () => {
    const next = state.lang === "zh-CN" ? "en" : "zh-CN";
    localStorage.setItem("coldchain-lang", next);
    await loadTexts(next);
    document.getElementById("lang").textContent = t("page.language");
    showWho();
    render();
  };
  document.getElementById("signout").onclick = async () => { await signOut(); render(); };
  window.addEventListener("hashchange", render);
  await render();
  setInterval(banner, 15000);
}

start();
