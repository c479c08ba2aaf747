// The console's entry point: who is logged in, the top bar, a tiny history router and the 10-second poll.
// The server serves this same shell for every console path; the path decides which page module draws itself.

import { session, loadMe, post, toLogin } from "./api.js";
import { h, fill, clearNotice, notice } from "./dom.js";
import { t, lang, setLang, setDefault } from "./i18n.js";
import * as dashboard from "./pages/dashboard.js";
import * as incidents from "./pages/incidents.js";
import * as incident from "./pages/incident.js";
import * as tickets from "./pages/tickets.js";
import * as ticket from "./pages/ticket.js";
import * as sources from "./pages/sources.js";
import * as reports from "./pages/reports.js";
import * as login from "./pages/login.js";
import * as scripts from "./pages/scripts.js";

// path pattern -> page module. A page module exports mount(root, params, ctx) returning
// {refresh?: () => Promise, poll?: boolean, unmount?: () => void}.
const ROUTES = [
  [/^\/$/, dashboard],
  [/^\/incidents\/?$/, incidents],
  [/^\/incidents\/(\d+)$/, incident],
  [/^\/tickets\/?$/, tickets],
  [/^\/tickets\/([^/]+)$/, ticket],
  [/^\/sources\/?$/, sources],
  [/^\/reports\/?$/, reports],
  [/^\/scripts\/?$/, scripts],
  [/^\/login$/, login],
];
const NAV = [["/", "nav_dashboard"], ["/tickets", "nav_tickets"], ["/sources", "nav_sources"], ["/reports", "nav_reports"],
  ["/scripts", "nav_scripts"]];
const POLL_MS = 10_000;

let current = null; // {page, timer, busy}

/** Go to an in-app path without reloading (pushState), or replace the entry. */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

function drawTopbar() {
  document.title = t("app_title");
  fill(document.getElementById("brand"), t("app_title"));
  const nav = document.getElementById("nav");
  const user = document.getElementById("user");
  const here = location.pathname;
  if (!session.me) {
    fill(nav);
  } else {
    fill(nav, NAV.map(([path, key]) => {
      const active = path === "/" ? here === "/" || here.startsWith("/incidents") : here.startsWith(path);
      return h("a", { href: path, "data-nav": "", class: active ? "active" : null, "aria-current": active ? "page" : null }, t(key));
    }));
  }
  const toggle = h("button", { type: "button", class: "btn btn-ghost", id: "lang-toggle", onclick: () => {
    setLang(lang() === "zh" ? "en" : "zh");
    render();
  } }, t("lang_toggle"));
  const parts = [toggle];
  if (session.me) {
    parts.unshift(h("span", { class: "whoami" }, `${session.me.name} · ${session.me.role}`));
    parts.push(h("button", { type: "button", class: "btn btn-ghost", id: "logout", onclick: logout }, t("logout")));
  }
  fill(user, parts);
}

async function logout() {
  try { await post("/api/logout", {}); } catch { /* the cookie is cleared either way */ }
  session.me = null;
  session.csrf = "";
  location.assign("/login");
}

function stop() {
  if (!current) return;
  clearInterval(current.timer);
  if (current.page && current.page.unmount) current.page.unmount();
  current = null;
}

/** Draw the page for the current path; start its poll if it has one. */
async function render() {
  stop();
  clearNotice();
  const root = document.getElementById("app");
  const path = location.pathname;
  const match = ROUTES.map(([re, mod]) => [path.match(re), mod]).find(([m]) => m);
  if (match && match[1] !== login && !session.me) { toLogin(); return; }
  drawTopbar();
  root.replaceChildren();
  if (!match) {
    fill(root, h("section", { class: "card" }, h("h1", {}, t("not_found")), h("a", { href: "/", "data-nav": "" }, t("back"))));
    return;
  }
  const [m, mod] = match;
  const state = { page: null, timer: 0, busy: false };
  current = state;
  const page = mod.mount(root, m.slice(1).map(decodeURIComponent), { navigate, refreshTopbar: drawTopbar }) || {};
  state.page = page;
  if (!page.refresh) return;
  const tick = async () => {
    // Skip while hidden (no point polling a background tab) or while the last answer is still on its way.
    if (state.busy || current !== state || document.hidden) return;
    state.busy = true;
    try { await page.refresh(); } catch (err) { if (err && err.status === undefined) console.warn(err); } finally { state.busy = false; }
  };
  await tick();
  if (page.poll && current === state) state.timer = setInterval(tick, POLL_MS);
}

// In-app links (data-nav) change the page without a reload; modified clicks keep their browser meaning.
document.addEventListener("click", (event) => {
  const a = event.target.closest && event.target.closest("a[data-nav]");
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});
window.addEventListener("popstate", render);
// Coming back to a hidden tab: refresh at once rather than wait for the next tick.
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && current && current.page && current.page.refresh && !current.busy) {
    current.busy = true;
    current.page.refresh().catch(() => {}).finally(() => { if (current) current.busy = false; });
  }
});

async function start() {
  try {
    const me = await loadMe();
    if (me) setDefault(me.language);
    else setDefault(null);
  } catch (err) {
    setDefault(null);
    notice(err.message);
  }
  await render();
}

start();
