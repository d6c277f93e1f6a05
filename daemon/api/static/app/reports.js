// Report downloads: a room, a period (day, week, month of a date, or custom dates), PDF or CSV. Reports need the
// manager's role, so the file is fetched through the session wrapper and handed to the browser as a download.
import { api } from "./api.js";
import { el, localInput, state, t } from "./i18n.js";
import { site } from "./main.js";

async function download(params, button, err) {
  err.textContent = "";
  button.disabled = true;
  try {
    const r = await api(`/api/v1/reports/compliance?${new URLSearchParams({ ...params, lang: state.lang })}`);
    const cd = r.headers.get("Content-Disposition") || "";
    const name = decodeURIComponent((cd.match(/filename\*=UTF-8''([^;]+)/) || [])[1] || `report.${params.format}`);
    const a = el("a", { href: URL.createObjectURL(await r.blob()), download: name });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) {
    err.textContent = `${t("app.download_failed")} (${e.message})`;
  } finally {
    button.disabled = false;
  }
}

export async function reportsView() {
  const today = localInput(site.time).slice(0, 10);
  const room = el("select", { name: "zone" }, ...site.zones.map((z) => el("option", { value: z.id }, z.name)));
  const period = el("select", { name: "period" }, ...["day", "week", "month", "custom"].map((k) =>
    el("option", { value: k }, t(`app.period_${k}`))));
  const date = el("input", { type: "date", name: "date", value: today });
  const from = el("input", { type: "date", name: "start", value: today });
  const to = el("input", { type: "date", name: "end", value: today });
  const custom = el("span", { class: "controls", hidden: true }, el("label", null, t("app.from"), from), el("label", null, t("app.to"), to));
  const dayBox = el("label", null, t("app.report_date"), date);
  period.onchange = () => { custom.hidden = period.value !== "custom"; dayBox.hidden = period.value === "custom"; };
  const err = el("p", { class: "error", id: "report-error" });
  const params = (format) => (period.value === "custom"
    ? { zone: room.value, period: "custom", start: from.value, end: to.value, format }
    : { zone: room.value, period: period.value, date: date.value, format });
  const pdf = el("button", { type: "button", class: "primary", "data-download": "pdf" }, t("app.download_pdf"));
  const csv = el("button", { type: "button", class: "primary", "data-download": "csv" }, t("app.download_csv"));
  pdf.onclick = () => download(params("pdf"), pdf, err);
  csv.onclick = () => download(params("csv"), csv, err);
  return el("div", { class: "card" }, el("div", { class: "controls" }, el("label", null, t("app.report_room"), room),
    el("label", null, t("app.report_period"), period), dayBox, custom, pdf, csv), err);
}
