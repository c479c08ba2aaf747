// The JSON API client. One place for the rules every call follows:
// - the session is an HttpOnly cookie, so fetch sends it (same-origin) and JS never sees it;
// - every unsafe call (POST/DELETE) carries X-CSRF-Token, the value /api/login or /api/me gave us;
// - 401 means the session is gone: go to /login?next=<here> and come back after logging in;
// - an error answer {error, code} is shown in the notice bar as the server worded it (often bilingual).

import { notice } from "./dom.js";
import { t } from "./i18n.js";

export const session = { me: null, csrf: "" };

export class ApiError extends Error {
  constructor(message, status, code, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** Send the browser to the login page, remembering where it was. */
export function toLogin() {
  if (location.pathname === "/login") return;
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

/**
 * fetch + JSON. Options: body (sent as JSON), quiet (do not show the error notice; the caller does),
 * noRedirect (a 401 is an answer, not a lost session: the login form itself).
 */
export async function request(method, path, { body, quiet = false, noRedirect = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (!quiet) notice(t("error_network"));
    throw new ApiError(t("error_network"), 0, "network", null);
  }
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try { data = await response.json(); } catch { data = null; }
  }
  if (response.status === 401 && !noRedirect) {
    toLogin();
    throw new ApiError("unauthorized", 401, "unauthorized", data);
  }
  if (!response.ok) {
    const message = (data && data.error) || t("error_generic", { status: response.status });
    if (!quiet) notice(message);
    throw new ApiError(message, response.status, data && data.code, data);
  }
  return data;
}

export const get = (path, opts) => request("GET", path, opts);
export const post = (path, body = {}, opts) => request("POST", path, { ...opts, body });
export const del = (path, opts) => request("DELETE", path, opts);

/** Who is logged in (and the CSRF token for this session); null when nobody is. */
export async function loadMe() {
  const me = await request("GET", "/api/me", { quiet: true, noRedirect: true }).catch((err) => {
    if (err.status === 401) return null;
    throw err;
  });
  session.me = me;
  session.csrf = (me && me.csrf) || "";
  return me;
}

/** True when the logged-in user may act (handler or admin), not only read. */
export function canAct() {
  const role = session.me && session.me.role;
  return role === "handler" || role === "admin";
}

/** A query string from an object, skipping empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined && v !== false) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
