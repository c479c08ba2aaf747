// DOM helpers. Everything that comes from the outside world (post text, titles, authors, URLs, notes) goes in
// through textContent or setAttribute on elements we create: the console never parses data as HTML, so a post
// containing <script> or onerror= is shown as the literal text it is.

import { t, lang } from "./i18n.js";

/**
 * h("a", {href: "/x", class: "btn", onclick: fn}, "text", child, [more]) -> element.
 * Attributes go through setAttribute (never "style": the CSP forbids inline styles; use classes),
 * functions on "on*" keys become listeners, strings/numbers become text nodes, null/false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A link to a post or evidence URL, only for http(s); anything else (javascript:, data:) is plain text. */
export function extLink(url, label) {
  let ok = false;
  try {
    const parsed = new URL(String(url));
    ok = parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch { /* not a URL: shown as text */ }
  if (!ok) return h("span", { class: "url-text" }, label ?? String(url ?? ""));
  return h("a", { href: String(url), target: "_blank", rel: "noopener noreferrer", class: "ext" }, label ?? String(url));
}

/** An in-app link, routed without reload by app.js (data-nav). */
export function navLink(path, ...children) {
  return h("a", { href: path, "data-nav": "" }, ...children);
}

/**
 * Text with every keyword wrapped in <mark>: the text is split around the matches and each piece is a text
 * node, so highlighting never turns data into markup. Longest keywords first so "鲸帆手机" wins over "鲸帆".
 */
export function highlight(text, keywords) {
  const span = h("span", { class: "hl" });
  const words = [...new Set((keywords || []).filter((k) => k && String(k).trim()))]
    .map(String).sort((a, b) => b.length - a.length);
  const source = String(text ?? "");
  if (!words.length) return fill(span, source);
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`(${escaped.join("|")})`, "gi");
  let last = 0;
  for (const m of source.matchAll(re)) {
    if (m.index > last) span.appendChild(document.createTextNode(source.slice(last, m.index)));
    span.appendChild(h("mark", {}, m[0]));
    last = m.index + m[0].length;
  }
  if (last < source.length) span.appendChild(document.createTextNode(source.slice(last)));
  return span;
}

const SEVERITIES = ["red", "orange", "yellow", "blue"];
/** Sort key: red first. */
export function severityRank(sev) {
  const i = SEVERITIES.indexOf(sev);
  return i < 0 ? SEVERITIES.length : i;
}

/** A coloured severity badge (colour by class, text from the dictionary). */
export function sevBadge(sev) {
  const known = SEVERITIES.includes(sev) ? sev : "none";
  return h("span", { class: `badge sev-${known}` }, known === "none" ? String(sev ?? "") : t(`sev_${sev}`));
}

/** Local date and time, "2026-11-02 09:40". */
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A duration in seconds as "2天3小时" / "2 d 3 h" (minutes dropped on spans of days, like the backend). */
export function fmtSpan(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return hh ? t("span_d", { d, h: hh }) : t("span_dd", { d });
  if (hh) return m ? t("span_h", { h: hh, m }) : t("span_hh", { h: hh });
  return t("span_m", { n: Math.max(m, 1) });
}

/** "3 小时前": how long ago an ISO time was. */
export function fmtAgo(iso) {
  if (!iso) return "—";
  const secs = (Date.now() - new Date(iso).getTime()) / 1000;
  if (!Number.isFinite(secs)) return String(iso);
  if (secs < 60) return t("ago_s");
  if (secs < 3600) return t("ago_m", { n: Math.floor(secs / 60) });
  if (secs < 86400) return t("ago_h", { n: Math.floor(secs / 3600) });
  return t("ago_d", { n: Math.floor(secs / 86400) });
}

/** A number with the locale's grouping. */
export function fmtNum(n) {
  return typeof n === "number" ? n.toLocaleString(lang() === "zh" ? "zh-CN" : "en") : String(n ?? "—");
}

/** A section with a heading and a body element to fill later. */
export function section(title, cls = "") {
  const body = h("div", { class: "section-body" });
  const el = h("section", { class: `card ${cls}` }, h("h2", {}, title), body);
  return { el, body };
}

// -- the notice bar: errors from the API (their {error} text) and confirmations --------------------------------

let noticeTimer = 0;
/** Show a message in the visible notice bar; errors stay until closed, confirmations fade after 4 s. */
export function notice(message, kind = "error") {
  const bar = document.getElementById("notice");
  if (!bar) return;
  clearTimeout(noticeTimer);
  fill(bar, h("span", { class: "notice-text" }, String(message)),
    h("button", { type: "button", class: "notice-close", "aria-label": t("close"), onclick: clearNotice }, "×"));
  bar.className = `notice notice-${kind}`;
  bar.hidden = false;
  if (kind !== "error") noticeTimer = setTimeout(clearNotice, 4000);
}

export function clearNotice() {
  const bar = document.getElementById("notice");
  if (bar) { bar.hidden = true; bar.replaceChildren(); }
}
