// Alarms: the list keeps acknowledged and closed ones (filters: room, state, kind, period); the detail page shows
// the audit trail and the messages sent, and is where staff acknowledge with a comment, record a corrective
// action and a manager closes (the HACCP follow-up API, daemon/api/followup.py). The box's own alarms (zone
// "_site": clock, disk, uplink) are rooms here like any other, with the same flow.
import { getJSON, postJSON } from "./api.js";
import { el, fmt, state, t, when } from "./i18n.js";
import { go, site, zoneName } from "./main.js";

const STATES = ["all", "open", "firing", "acknowledged", "resolved", "closed"];
const PERIODS = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, all: Infinity };
const ACTIONS = ["moved", "discarded", "kept_after_check", "other"];
const lang = () => encodeURIComponent(state.lang);

const eventText = (s) => (state.texts[`state.${s}`] ? t(`state.${s}`) : t(`app.event_${s}`));
const shown = (a) => (a.closed ? "closed" : a.state);
const PAGE = 50;

// The server filters and pages (GET /api/v1/alerts): a big site has thousands of alarms, the list shows PAGE at
// a time, newest first, and "more" asks for the next page from the cursor the last one gave.
function listURL(p, before) {
  const q = new URLSearchParams({ lang: state.lang, fired: "true", limit: String(PAGE) });
  if (p.zone) q.set("zone", p.zone);
  if (p.state && p.state !== "all") q.set("state", p.state);
  if (p.kind) q.set("kind", p.kind);
  const span = PERIODS[p.period || "30d"];
  if (span !== Infinity) q.set("since", String(site.time - span));
  if (before) q.set("before", String(before));
  return `/api/v1/alerts?${q}`;
}

function select(name, value, options, onchange) {
  return el("label", null, t(`app.filter_${name}`) === `app.filter_${name}` ? t("app.room") : t(`app.filter_${name}`),
    el("select", { name, onchange: (e) => onchange(e.target.value) },
      ...options.map(([v, text]) => el("option", { value: v, selected: v === (value || "") }, text))));
}

const item = (a) => el("li", { "data-alarm": a.id },
  el("a", { href: `#/alarm/${a.id}` }, `#${a.id}`), el("span", { class: `state ${shown(a)}` }, t(`state.${shown(a)}`)),
  el("span", null, zoneName(a.zone)), el("span", null, a.kind_text),
  el("span", null, a.value !== null ? fmt(a.value) : a.detail || ""), el("span", { class: "note" }, when(a.started)),
  a.acked_by ? el("span", { class: "note" }, `${t("state.acknowledged")}: ${a.acked_by}`) : null);

// The "more" button: appends the next page to `list` and goes away after the last one.
function moreButton(p, list, cursor) {
  const err = el("p", { class: "error" });
  const btn = el("button", { type: "button", id: "alarm-more", hidden: cursor === null }, t("app.more"));
  btn.onclick = async () => {
    btn.disabled = true;
    err.textContent = "";
    try {
      const page = await getJSON(listURL(p, cursor));
      list.append(...page.alerts.map(item));
      cursor = page.next;
      btn.hidden = cursor === null;
    } catch (e) {
      err.textContent = String(e.message || e);
    }
    btn.disabled = false;
  };
  return el("div", null, btn, err);
}

export async function alarmsView(_arg, p) {
  const page = await getJSON(listURL(p));
  const kinds = page.kinds.map((k) => [k.kind, k.text]);
  if (p.kind && !kinds.some(([k]) => k === p.kind)) kinds.push([p.kind, p.kind]);
  const set = (k) => (v) => go("alarms", { ...p, [k]: v });
  const filters = el("div", { class: "controls card" },
    select("zone", p.zone, [["", t("app.all")], ...site.zones.map((z) => [z.id, z.name]), ["_site", t("app.box")]], set("zone")),
    select("state", p.state || "all", STATES.map((s) => [s, s === "all" ? t("app.all") : s === "open" ? t("app.open") : t(`state.${s}`)]), set("state")),
    select("kind", p.kind, [["", t("app.all")], ...kinds], set("kind")),
    select("period", p.period || "30d", Object.keys(PERIODS).map((k) => [k, k === "all" ? t("app.all") : t(`app.range_${k}`)]), set("period")));
  const list = el("ul", { class: "list", id: "alarm-list" }, ...page.alerts.map(item));
  return el("div", null, filters, el("div", { class: "card" },
    page.alerts.length ? list : el("p", { class: "note" }, t("app.no_alarms")), moreButton(p, list, page.next)));
}

function facts(a) {
  const rows = [["app.room", zoneName(a.zone)], ["app.filter_kind", a.kind_text], ["app.filter_state", t(`state.${shown(a)}`)],
    ["app.started", when(a.started)], ["app.fired", when(a.fired)], ["app.resolved", when(a.resolved)],
    ["app.value", fmt(a.value)], ["app.peak", fmt(a.peak)], ["app.limit", fmt(a.limit)], ["app.detail", a.detail || "–"]];
  return el("dl", { class: "facts" }, ...rows.flatMap(([k, v]) => [el("dt", null, t(k)), el("dd", null, v)]));
}

// A write from the detail page; on success the page is drawn again from the journal.
function act(id, url, body, err) {
  return async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    try {
      await postJSON(`/api/v1/alerts/${id}/${url}?lang=${lang()}`, body());
      go("alarm", { id, done: Date.now() });
    } catch (e) {
      err.textContent = `${t("page.ack_failed")} (${e.message})`;
    }
  };
}

function forms(a, detail, err) {
  const out = [];
  if (a.state === "firing" || a.state === "pending") {
    const comment = el("input", { name: "comment", placeholder: t("page.ack_comment") });
    out.push(el("form", { class: "inline", id: "ack-form", onsubmit: act(a.id, "ack", () => ({ comment: comment.value || null }), err) },
      comment, el("button", { type: "submit", class: "danger", "data-ack": a.id }, t("page.ack"))));
  }
  if (!a.closed && (a.acked || a.state === "resolved")) {
    const kind = el("select", { name: "kind" }, ...ACTIONS.map((k) => el("option", { value: k }, t(`action.${k}`))));
    const text = el("input", { name: "text", required: true, placeholder: t("page.action_text") });
    out.push(el("form", { class: "inline", id: "action-form", onsubmit: act(a.id, "action", () => ({ kind: kind.value, text: text.value }), err) },
      kind, text, el("button", { type: "submit", class: "primary", "data-action": a.id }, t("page.record_action"))));
  }
  if (!a.closed && a.state === "resolved" && detail.actions.length) {
    out.push(el("form", { class: "inline", onsubmit: act(a.id, "close", () => ({}), err) },
      el("button", { type: "submit", class: "primary", "data-close": a.id }, t("page.close"))));
  }
  return out;
}

export async function alarmView(id, p) {
  id = id || p.id;
  const a = await getJSON(`/api/v1/alerts/${encodeURIComponent(id)}?lang=${lang()}`);
  const err = el("p", { class: "error", id: "alarm-error" });
  const audit = el("ul", { class: "list", id: "audit" }, ...a.events.map((e) =>
    el("li", null, el("span", { class: "note" }, when(e.ts)), el("span", { class: `state ${e.state}` }, eventText(e.state)),
      el("span", null, e.who || ""), el("span", null, e.comment || ""))));
  const actions = el("ul", { class: "list", id: "actions" }, ...a.actions.map((x) =>
    el("li", null, el("span", { class: "note" }, when(x.ts)), el("b", null, x.kind_text), el("span", null, x.text), el("span", null, x.who))));
  const msgs = el("ul", { class: "list", id: "messages" }, ...a.messages.map((m) =>
    el("li", null, el("span", { class: "note" }, when(m.created)), el("span", null, `${m.channel} → ${m.contact}`),
      el("span", null, m.state), m.delivered === null ? null : el("span", null, m.delivered ? t("app.delivered") : t("app.not_delivered")))));
  return el("div", { class: "grid2", "data-detail": a.id },
    el("div", { class: "card" }, el("h3", null, `#${a.id} ${a.kind_text}`), facts(a), ...forms(a, a, err), err,
      p.done ? el("p", { class: "note", id: "saved" }, t("app.done")) : null,
      el("p", null, el("a", { href: "#/alarms" }, t("app.back")))),
    el("div", null, el("div", { class: "card" }, el("h3", null, t("app.audit")), audit),
      el("div", { class: "card" }, el("h3", null, t("app.actions")), actions),
      el("div", { class: "card" }, el("h3", null, t("app.messages_sent")), msgs)));
}
