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
function matches(a, p) {
  const s = p.state || "all";
  if (s === "open" && (a.closed || a.state === "resolved")) return false;
  if (!["all", "open"].includes(s) && shown(a) !== s) return false;
  if (p.kind && a.kind !== p.kind) return false;
  return site.time - a.started <= PERIODS[p.period || "30d"];
}

function select(name, value, options, onchange) {
  return el("label", null, t(`app.filter_${name}`) === `app.filter_${name}` ? t("app.room") : t(`app.filter_${name}`),
    el("select", { name, onchange: (e) => onchange(e.target.value) },
      ...options.map(([v, text]) => el("option", { value: v, selected: v === (value || "") }, text))));
}

export async function alarmsView(_arg, p) {
  const q = p.zone ? `&zone=${encodeURIComponent(p.zone)}` : "";
  const rows = (await getJSON(`/api/v1/alerts?limit=2000&lang=${lang()}${q}`)).alerts.filter((a) => a.fired !== null);
  const kinds = [...new Map(rows.map((a) => [a.kind, a.kind_text])).entries()];
  const set = (k) => (v) => go("alarms", { ...p, [k]: v });
  const filters = el("div", { class: "controls card" },
    select("zone", p.zone, [["", t("app.all")], ...site.zones.map((z) => [z.id, z.name]), ["_site", t("app.box")]], set("zone")),
    select("state", p.state || "all", STATES.map((s) => [s, s === "all" ? t("app.all") : s === "open" ? t("app.open") : t(`state.${s}`)]), set("state")),
    select("kind", p.kind, [["", t("app.all")], ...kinds], set("kind")),
    select("period", p.period || "30d", Object.keys(PERIODS).map((k) => [k, k === "all" ? t("app.all") : t(`app.range_${k}`)]), set("period")));
  const hits = rows.filter((a) => matches(a, p));
  const list = el("ul", { class: "list", id: "alarm-list" }, ...hits.map((a) => el("li", { "data-alarm": a.id },
    el("a", { href: `#/alarm/${a.id}` }, `#${a.id}`), el("span", { class: `state ${shown(a)}` }, t(`state.${shown(a)}`)),
    el("span", null, zoneName(a.zone)), el("span", null, a.kind_text),
    el("span", null, a.value !== null ? fmt(a.value) : a.detail || ""), el("span", { class: "note" }, when(a.started)),
    a.acked_by ? el("span", { class: "note" }, `${t("state.acknowledged")}: ${a.acked_by}`) : null)));
  return el("div", null, filters, el("div", { class: "card" }, hits.length ? list : el("p", { class: "note" }, t("app.no_alarms"))));
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
