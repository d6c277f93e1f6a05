// One fetch wrapper for every call (the sign-in contract of issue 15): same-origin cookies, the CSRF header on
// writes, and on 401 the sign-in form, then the same request again. The form also takes a bearer token (kept in
// this browser's localStorage under "coldchain-token"), which is then sent too; the rooms and lots pages take none.
import { t } from "./i18n.js";

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const TOKEN_KEY = "coldchain-token";
export const session = { user: null, role: null };

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

function headersFor(method, extra) {
  const h = new Headers(extra || {});
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) h.set("Authorization", `Bearer ${token}`);
  const csrf = cookie("cc_csrf");
  if (WRITES.has(method) && csrf) h.set("X-CSRF-Token", csrf);
  return h;
}

export class HttpError extends Error {
  constructor(status, detail) {
    super(`${status}${detail ? " " + detail : ""}`);
    this.status = status;
  }
}

// fetch with the session; `json` is sent as the body. Resolves to the Response (ok), throws HttpError otherwise.
export async function api(url, { method = "GET", json, headers } = {}) {
  for (let tries = 0; ; tries++) {
    const h = headersFor(method, headers);
    if (json !== undefined) h.set("Content-Type", "application/json");
    const r = await fetch(url, { method, credentials: "same-origin", headers: h,
      body: json === undefined ? undefined : JSON.stringify(json) });
    if (r.status === 401 && tries < 3 && (await signIn())) continue;
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      const detail = typeof body.detail === "string" ? body.detail : body.detail ? JSON.stringify(body.detail) : "";
      throw new HttpError(r.status, detail);
    }
    return r;
  }
}

export const getJSON = async (url) => (await api(url)).json();
export const postJSON = async (url, json) => (await api(url, { method: "POST", json })).json();

// The sign-in form: a user name and password (POST /api/v1/session), or a bearer token. Resolves true when the
// caller should retry, false when the person cancelled.
let pending = null;
export function signIn() {
  if (pending) return pending;
  const dlg = document.getElementById("signin");
  const form = document.getElementById("signin-form");
  const err = document.getElementById("signin-error");
  err.textContent = "";
  pending = new Promise((resolve) => {
    const done = (ok) => {
      form.onsubmit = null;
      document.getElementById("signin-cancel").onclick = null;
      dlg.close();
      pending = null;
      resolve(ok);
    };
    document.getElementById("signin-cancel").onclick = () => done(false);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const token = String(f.get("token") || "").trim();
      if (token) {
        localStorage.setItem(TOKEN_KEY, token);
        form.reset();
        return done(true);
      }
      const r = await fetch("/api/v1/session", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: f.get("username"), password: f.get("password") }) });
      if (r.ok) {
        Object.assign(session, await r.json());
        form.reset();
        showWho();
        return done(true);
      }
      err.textContent = r.status === 429 ? t("app.locked", { s: r.headers.get("Retry-After") || "?" }) : t("app.sign_in_failed");
    };
    dlg.showModal();
  });
  return pending;
}

export async function loadSession() {
  const r = await fetch("/api/v1/session", { credentials: "same-origin" }).catch(() => null);
  if (r && r.ok) Object.assign(session, await r.json());
  showWho();
}

export async function signOut() {
  localStorage.removeItem(TOKEN_KEY);
  await fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin",
    headers: { "X-CSRF-Token": cookie("cc_csrf") } }).catch(() => null);
  session.user = session.role = null;
  showWho();
}

export function showWho() {
  const signedIn = Boolean(session.user || localStorage.getItem(TOKEN_KEY));
  document.getElementById("who").textContent = session.user ? t("app.signed_in_as", { user: session.user }) : "";
  document.getElementById("signout").hidden = !signedIn;
}
