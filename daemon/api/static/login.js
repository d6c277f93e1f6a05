// The sign-in page: POST /api/v1/session, then back to the page that sent the user here (?next=, same site only).
"use strict";
const T = JSON.parse(document.getElementById("texts").textContent);
const t = (key, params = {}) => (T[key] || key).replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ""));
document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
document.title = t("signin.title");

const here = new URL(location.href);
// only a path on this box: "//evil.example" or "https://..." would send the signed-in user elsewhere
function nextPath() {
  const n = here.searchParams.get("next") || "/";
  return n.startsWith("/") && !n.startsWith("//") && !n.startsWith("/\\") ? n : "/";
}

const lang = document.documentElement.lang;
const other = lang === "en" ? "zh-CN" : "en";
const langLink = document.getElementById("lang");
here.searchParams.set("lang", other);
langLink.href = here.pathname + here.search;

const form = document.getElementById("signin");
const error = document.getElementById("error");
const button = document.getElementById("submit");
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.textContent = "";
  button.disabled = true;
  try {
    const resp = await fetch("/api/v1/session", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: form.username.value.trim(), password: form.password.value }),
    });
    if (resp.ok) {
      location.assign(nextPath());
      return;
    }
    if (resp.status === 429) {
      const minutes = Math.max(1, Math.ceil(Number(resp.headers.get("Retry-After") || "60") / 60));
      error.textContent = t("signin.locked", { minutes });
    } else if (resp.status === 401 || resp.status === 422) {
      error.textContent = t("signin.wrong");
      form.password.value = "";
      form.password.focus();
    } else {
      error.textContent = t("signin.failed", { status: resp.status });
    }
  } catch (e) {
    error.textContent = t("signin.offline");
  } finally {
    button.disabled = false;
  }
});
