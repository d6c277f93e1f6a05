// Battery and signal of a sensor on the rooms page, and a controller's defrost / alarm state: a small badge
// after its reading (kept apart from app.js).
"use strict";
window.deviceBadge = function (s, t) {
  const d = s.device || {};
  const parts = [];
  if (d.battery) parts.push(`${t("page.battery")} ${Math.round(d.battery.value)} %`);
  else if (d.battery_voltage) parts.push(`${t("page.battery")} ${Number(d.battery_voltage.value).toFixed(2)} V`);
  if (d.signal) parts.push(`${t("page.signal")} ${Math.round(d.signal.value)} dBm`);
  else if (d.link_quality) parts.push(`${t("page.signal")} LQI ${Math.round(d.link_quality.value)}`);
  if (d.defrost && d.defrost.value === 1) parts.push(t("page.defrost"));
  if (d.controller_alarm && d.controller_alarm.value) parts.push(`${t("page.controller_alarm")} 0x${d.controller_alarm.value.toString(16).padStart(4, "0").toUpperCase()}`);
  if (!parts.length && !d.battery_low) return null;
  const span = document.createElement("span");
  span.className = d.battery_low ? "device battery-low" : "device";
  span.dataset.device = s.id;
  span.textContent = (d.battery_low ? `${t("page.battery_low")} · ` : "") + parts.join(" · ");
  return span;
};
