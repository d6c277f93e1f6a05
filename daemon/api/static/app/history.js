// History of a room: range picker, temperature and humidity charts (uPlot) with the alarm limits labelled,
// values on hover (the legend follows the cursor, both charts in step), the period's min / max / mean / MKT
// from the box's report code (/api/v1/history/summary), and a second room to compare.
import { getJSON } from "./api.js";
import { el, fmt, localInput, state, t } from "./i18n.js";
import { go, site, zoneName } from "./main.js";

const SPANS = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
const COLORS = ["#1f5fbf", "#e07b00", "#2e7d32", "#8e24aa", "#00838f", "#6d4c41"];
export const charts = [];

function period(p) {
  if (p.range === "custom" && p.from && p.to) return { start: p.from, end: p.to };
  const end = site.time;
  return { start: String(end - SPANS[p.range || "24h"]), end: String(end) };
}

// One request per room and quantity; the server buckets to about one point per pixel of the chart.
async function series(zone, quantity, span, width) {
  const q = new URLSearchParams({ zone, quantity, start: span.start, end: span.end, max_points: String(Math.max(100, Math.min(5000, width))) });
  const data = await getJSON(`/api/v1/history?${q}`);
  return { start: data.start, end: data.end, series: data.series.map((s) => ({ ...s, zone })) };
}

// Limit lines drawn on the canvas with a label on a white box, kept inside the plot so none is clipped.
function limitsPlugin(limits) {
  return {
    hooks: {
      draw: (u) => {
        const { ctx, bbox } = u;
        ctx.save();
        ctx.font = `${Math.round(12 * devicePixelRatio)}px system-ui, sans-serif`;
        ctx.textBaseline = "bottom";
        ctx.textAlign = "left";
        for (const lim of limits) {
          const y = Math.round(u.valToPos(lim.value, "y", true));
          if (y < bbox.top || y > bbox.top + bbox.height) continue;
          ctx.strokeStyle = "#c62828";
          ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
          ctx.lineWidth = devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(bbox.left, y);
          ctx.lineTo(bbox.left + bbox.width, y);
          ctx.stroke();
          const text = lim.label;
          const w = ctx.measureText(text).width + 8 * devicePixelRatio;
          const h = 16 * devicePixelRatio;
          const ty = Math.max(bbox.top + h, y - 2 * devicePixelRatio);
          const tx = bbox.left + 4 * devicePixelRatio;
          ctx.fillStyle = "rgba(255,255,255,.85)";
          ctx.fillRect(tx, ty - h, w, h);
          ctx.fillStyle = "#c62828";
          ctx.fillText(text, tx + 4 * devicePixelRatio, ty - 2 * devicePixelRatio);
        }
        ctx.restore();
      },
    },
  };
}

// Time labels on the site's clock in the page's language: hours for a day or two, dates beyond.
function timeLabels(span) {
  const opts = span <= 2 * 86400 ? { hour: "2-digit", minute: "2-digit" }
    : span <= 10 * 86400 ? { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" } : { month: "2-digit", day: "2-digit" };
  const f = new Intl.DateTimeFormat(state.lang, { ...opts, timeZone: state.tz, hourCycle: "h23" });
  return (u, splits) => splits.map((ts) => f.format(new Date(ts * 1000)));
}

function chartOpts(title, width, labels, limits, unit, digits, range) {
  const lims = limits.map((l) => l.value);
  return {
    title, width, height: width < 600 ? 220 : 320,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), state.tz),
    cursor: { sync: { key: "cc-history" }, drag: { x: false, y: false } },
    scales: { x: { time: true, range: () => range }, y: { range: (u, lo, hi) => {
      const a = Math.min(lo ?? 0, ...lims), b = Math.max(hi ?? 1, ...lims);
      const pad = Math.max(0.5, (b - a) * 0.08);
      return [a - pad, b + pad];
    } } },
    series: [{ label: t("app.time"), value: (u, ts) => (ts === null ? "–" : new Date(ts * 1000).toLocaleString(state.lang, { timeZone: state.tz, hour12: false })) },
      ...labels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
        value: (u, v) => (v === null || v === undefined ? "–" : `${fmt(v, digits)} ${unit}`) }))],
    axes: [{ values: timeLabels(range[1] - range[0]) }, { values: (u, vals) => vals.map((v) => fmt(v, digits)) }],
    plugins: [limitsPlugin(limits)],
  };
}

function limitsOf(zone, quantity) {
  const z = site.zones.find((x) => x.id === zone);
  if (!z) return [];
  const l = z.limits;
  const pick = quantity === "temperature"
    ? [["app.limit_high", l.temp_high], ["app.limit_low", l.temp_low], ["app.limit_freeze", l.freeze]]
    : [["app.limit_high", l.rh_high], ["app.limit_low", l.rh_low]];
  const unit = quantity === "temperature" ? "°C" : "%RH";
  return pick.filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => ({ key: `${k}:${v}`, value: v, zone, text: t(k, { value: `${fmt(v)} ${unit}` }) }));
}

// One line per limit; a room's name is put before it only when the compared rooms' limits differ.
function mergedLimits(zones, quantity) {
  const byKey = new Map();
  for (const l of zones.flatMap((z) => limitsOf(z, quantity))) {
    if (!byKey.has(l.key)) byKey.set(l.key, { ...l, zones: [] });
    byKey.get(l.key).zones.push(l.zone);
  }
  return [...byKey.values()].map((l) => ({ value: l.value,
    label: l.zones.length === zones.length ? l.text : `${l.zones.map(zoneName).join(", ")} ${l.text}` }));
}

// A uPlot chart of several series (rows [ts, min, mean, max, count]: the mean is drawn); null when none has data.
function draw(box, quantity, parts, zones, width) {
  const all = parts.flatMap((p) => p.series);
  if (!all.some((s) => s.rows.length)) return null;
  const tables = all.map((s) => [s.rows.map((r) => r[0]), s.rows.map((r) => r[2])]);
  const data = uPlot.join(tables);
  const labels = all.map((s) => `${zoneName(s.zone)} ${s.sensor}`);
  const limits = mergedLimits(zones, quantity);
  const title = t(quantity === "temperature" ? "app.temperature" : "app.humidity");
  const t0 = performance.now();
  const u = new uPlot(chartOpts(title, width, labels, limits, quantity === "temperature" ? "°C" : "%RH",
    quantity === "temperature" ? 1 : 0, [parts[0].start, parts[0].end]), data, box);
  const ms = performance.now() - t0;
  charts.push(u);
  return { points: data[0].length * all.length, ms };
}

function statsTable(rows) {
  const head = el("tr", null, el("th", null, t("app.room")), el("th", null, t("app.min")), el("th", null, t("app.max")),
    el("th", null, t("app.mean")), el("th", null, t("app.mkt")), el("th", null, t("app.completeness")),
    el("th", null, t("app.minutes_out")));
  const body = rows.flatMap(({ zone, s }) => {
    const out = [];
    const tq = s.temperature, hq = s.humidity;
    out.push(el("tr", { "data-stats": zone, "data-q": "temperature" }, el("td", null, `${zoneName(zone)} °C`),
      el("td", { class: "min" }, fmt(tq?.min)), el("td", { class: "max" }, fmt(tq?.max)),
      el("td", { class: "mean" }, fmt(tq?.mean, 2)), el("td", { class: "mkt" }, fmt(tq?.mkt, 2)),
      el("td", null, tq?.completeness === null || !tq ? "–" : `${fmt(tq.completeness, 1)} %`),
      el("td", null, fmt(tq?.minutes_out, 0))));
    if (hq) out.push(el("tr", { "data-stats": zone, "data-q": "humidity" }, el("td", null, `${zoneName(zone)} %RH`),
      el("td", { class: "min" }, fmt(hq.min, 0)), el("td", { class: "max" }, fmt(hq.max, 0)),
      el("td", { class: "mean" }, fmt(hq.mean, 1)), el("td", null, "–"),
      el("td", null, hq.completeness === null ? "–" : `${fmt(hq.completeness, 1)} %`), el("td", null, fmt(hq.minutes_out, 0))));
    return out;
  });
  return el("table", { class: "stats" }, el("thead", null, head), el("tbody", null, ...body));
}

function controls(p) {
  const zones = site.zones;
  const set = (changes) => go("history", { ...p, ...changes });
  const room = el("select", { name: "zone", onchange: (e) => set({ zone: e.target.value }) },
    ...zones.map((z) => el("option", { value: z.id, selected: z.id === p.zone }, z.name)));
  const cmp = el("select", { name: "compare", onchange: (e) => set({ compare: e.target.value }) },
    el("option", { value: "" }, t("app.none")),
    ...zones.filter((z) => z.id !== p.zone).map((z) => el("option", { value: z.id, selected: z.id === p.compare }, z.name)));
  const ranges = el("div", { class: "ranges", role: "group" }, ...["24h", "7d", "30d", "custom"].map((k) =>
    el("button", { type: "button", "data-range": k, class: (p.range || "24h") === k ? "on" : "",
      onclick: () => (k === "custom" ? set({ range: "custom" }) : set({ range: k, from: "", to: "" })) }, t(`app.range_${k}`))));
  const out = el("div", { class: "controls" }, el("label", null, t("app.room"), room),
    el("label", null, t("app.compare"), cmp), ranges);
  if (p.range === "custom") {
    const end = site.time;
    const from = el("input", { type: "datetime-local", name: "from", value: p.from || localInput(end - 86400) });
    const to = el("input", { type: "datetime-local", name: "to", value: p.to || localInput(end) });
    out.append(el("form", { class: "controls", onsubmit: (e) => { e.preventDefault(); set({ from: from.value, to: to.value }); } },
      el("label", null, t("app.from"), from), el("label", null, t("app.to"), to),
      el("button", { type: "submit", class: "primary", "data-apply": "1" }, t("app.apply"))));
  }
  return out;
}

export async function historyView(_arg, params) {
  const p = { ...params, zone: params.zone || site.zones[0]?.id };
  charts.splice(0).forEach((u) => u.destroy());
  const root = el("div", { class: "history-view" });
  root.append(el("div", { class: "card" }, controls(p)));
  if (!p.zone) return root;
  if (p.range === "custom" && !(p.from && p.to)) return root;  // the form waits for the person's dates
  const span = period(p);
  const zones = [p.zone, ...(p.compare && p.compare !== p.zone ? [p.compare] : [])];
  const width = Math.min(document.getElementById("view").clientWidth || 360, 1366) - 40;
  const t0 = performance.now();
  const [temps, hums] = await Promise.all([
    Promise.all(zones.map((z) => series(z, "temperature", span, width))),
    Promise.all(zones.map((z) => series(z, "humidity", span, width))),
  ]);
  // the period's statistics (MKT over every reading) take longer than the charts: asked for once the charts'
  // data is in (so the box's CPU goes to the charts first), shown when ready
  const stats = Promise.all(zones.map(async (z) => ({ zone: z, s: await getJSON(`/api/v1/history/summary?${new URLSearchParams({ zone: z, ...span })}`) })));
  const chartBox = el("div", { class: "card chart", id: "chart-temperature" });
  const humBox = el("div", { class: "card chart", id: "chart-humidity" });
  const table = el("div", { class: "scroll" }, el("p", { class: "note" }, t("app.loading")));
  const statCard = el("div", { class: "card", id: "stats" }, el("h3", null, t("app.stats_for")), table);
  root.append(statCard, chartBox, humBox);
  // drawn once the router has put the view in the page (uPlot measures its legend there)
  root.mounted = () => {
    const a = draw(chartBox, "temperature", temps, zones, width);
    const b = draw(humBox, "humidity", hums, zones, width);
    if (!a) chartBox.append(el("p", { class: "note" }, t("app.no_data")));
    if (!b) humBox.remove();
    const ms = performance.now() - t0;
    const points = (a?.points || 0) + (b?.points || 0);
    statCard.append(el("p", { class: "note", id: "drawn" }, t("app.drawn", { n: points, ms: Math.round(ms) })));
    window.dispatchEvent(new CustomEvent("cc-drawn", { detail: { ms, points, draw_ms: (a?.ms || 0) + (b?.ms || 0) } }));
    stats.then((rows) => {
      table.replaceChildren(statsTable(rows));
      window.dispatchEvent(new CustomEvent("cc-stats", { detail: { ms: performance.now() - t0 } }));
    }, (e) => table.replaceChildren(el("p", { class: "error" }, String(e.message || e))));
  };
  return root;
}
