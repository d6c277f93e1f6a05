// The rooms and lots pages' way to the API (the sign-in contract of issue 15, as static/app/api.js keeps it):
// the session cookie goes along (same origin), every write carries X-CSRF-Token (the cc_csrf cookie's value),
// and a 401 sends the person to /login, which brings them back here once signed in. No token is kept in the
// browser: bearer tokens stay for machines and scripts.
"use strict";
(function () {
  const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

  function cookie(name) {
    const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
  }

  function signIn() {
    const here = location.pathname + location.search + location.hash;
    const lang = document.documentElement.lang || "";
    location.assign(`/login?next=${encodeURIComponent(here)}${lang ? "&lang=" + encodeURIComponent(lang) : ""}`);
  }

  // fetch() with the session; on 401 the page goes to the sign-in and the promise rejects.
  async function api(url, options = {}) {
    const method = (options.method || "GET").toUpperCase();
    const headers = new Headers(options.headers || {});
    const csrf = cookie("cc_csrf");
    if (WRITES.has(method) && csrf) headers.set("X-CSRF-Token", csrf);
    const r = await fetch(url, { ...options, method, headers, credentials: "same-origin" });
    if (r.status === 401) {
      signIn();
      throw new Error("401");
    }
    return r;
  }

  window.ccApi = api;
})();
