// Small SVG charts built with createElementNS (no library, no inline styles: colours come from classes in
// app.css). Each chart has a fixed viewBox and scales to its container's width, so it works on a phone too.
// Every bar carries a <title> (textContent) as its tooltip.

import { t } from "./i18n.js";
import { fmtTime } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = String(text);
  return el;
}

function frame(width, height, label) {
  return s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": label });
}

/** A short tick label: hour for a day's range, date for longer ones. */
function tick(iso, long) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const p = (n) => String(n).padStart(2, "0");
  return long ? `${p(d.getMonth() + 1)}-${p(d.getDate())}` : `${p(d.getHours())}:00`;
}

function legend(svg, x, y, items) {
  let at = x;
  for (const [cls, text] of items) {
    svg.appendChild(s("rect", { x: at, y: y - 9, width: 10, height: 10, class: cls }));
    const label = s("text", { x: at + 14, y, class: "chart-legend" }, text);
    svg.appendChild(label);
    at += 24 + text.length * 11;
  }
}

/**
 * A watch's volume over the range: posts as bars (left scale) and the negative share as a line (right scale,
 * 0-100 %). series = [{t, posts, negatives}].
 */
export function trendChart(series, { long = false, label = "" } = {}) {
  const W = 600, H = 190, L = 34, R = 40, T = 22, B = 24;
  const svg = frame(W, H, label);
  if (!series || !series.length) {
    svg.appendChild(s("text", { x: W / 2, y: H / 2, class: "chart-empty", "text-anchor": "middle" }, t("no_data")));
    return svg;
  }
  const maxPosts = Math.max(1, ...series.map((p) => p.posts || 0));
  const iw = W - L - R, ih = H - T - B, step = iw / series.length, bw = Math.max(1, step * 0.7);
  const y = (v) => T + ih - (v / maxPosts) * ih;
  // Axes: left posts, right share.
  svg.appendChild(s("line", { x1: L, y1: T + ih, x2: W - R, y2: T + ih, class: "axis" }));
  svg.appendChild(s("text", { x: L - 4, y: T + 4, class: "chart-tick", "text-anchor": "end" }, maxPosts));
  svg.appendChild(s("text", { x: L - 4, y: T + ih, class: "chart-tick", "text-anchor": "end" }, 0));
  svg.appendChild(s("text", { x: W - R + 4, y: T + 4, class: "chart-tick" }, "100%"));
  svg.appendChild(s("text", { x: W - R + 4, y: T + ih, class: "chart-tick" }, "0%"));
  const points = [];
  series.forEach((p, i) => {
    const x = L + i * step + (step - bw) / 2;
    const posts = p.posts || 0, neg = p.negatives || 0;
    const bar = s("rect", { x, y: y(posts), width: bw, height: Math.max(0, T + ih - y(posts)), class: "bar-posts" });
    const share = posts ? neg / posts : 0;
    bar.appendChild(s("title", {}, `${fmtTime(p.t)}  ${t("legend_posts")} ${posts}  ${t("legend_neg_share")} ${Math.round(share * 100)}%`));
    svg.appendChild(bar);
    if (posts) points.push(`${(x + bw / 2).toFixed(1)},${(T + ih - share * ih).toFixed(1)}`);
    const every = Math.max(1, Math.ceil(series.length / 6));
    if (i % every === 0) {
      svg.appendChild(s("text", { x: x + bw / 2, y: H - 6, class: "chart-tick", "text-anchor": "middle" }, tick(p.t, long)));
    }
  });
  if (points.length > 1) svg.appendChild(s("polyline", { points: points.join(" "), class: "line-share" }));
  else if (points.length === 1) {
    const [cx, cy] = points[0].split(",");
    svg.appendChild(s("circle", { cx, cy, r: 3, class: "dot-share" }));
  }
  legend(svg, L, 14, [["bar-posts", t("legend_posts")], ["key-share", t("legend_neg_share")]]);
  return svg;
}

const SEV_LEVEL = { blue: 1, yellow: 2, orange: 3, red: 4 };

/**
 * An incident's timeline: per detection point, posts (light bars) with the negatives inside them (dark bars),
 * the expected count as a dashed line, and the severity as a coloured step strip along the bottom.
 * points = [{at, key, severity, score, negatives, posts, authors, expected}].
 */
export function timelineChart(points, { label = "" } = {}) {
  const W = 600, H = 210, L = 34, R = 10, T = 22, B = 40;
  const svg = frame(W, H, label);
  const data = [...(points || [])].sort((a, b) => String(a.at).localeCompare(String(b.at)));
  if (!data.length) {
    svg.appendChild(s("text", { x: W / 2, y: H / 2, class: "chart-empty", "text-anchor": "middle" }, t("no_data")));
    return svg;
  }
  const max = Math.max(1, ...data.map((p) => Math.max(p.posts || 0, p.negatives || 0, p.expected || 0)));
  const iw = W - L - R, ih = H - T - B, step = iw / data.length, bw = Math.max(1, step * 0.7);
  const y = (v) => T + ih - (v / max) * ih;
  svg.appendChild(s("line", { x1: L, y1: T + ih, x2: W - R, y2: T + ih, class: "axis" }));
  svg.appendChild(s("text", { x: L - 4, y: T + 4, class: "chart-tick", "text-anchor": "end" }, Math.round(max)));
  svg.appendChild(s("text", { x: L - 4, y: T + ih, class: "chart-tick", "text-anchor": "end" }, 0));
  const expected = [];
  data.forEach((p, i) => {
    const x = L + i * step + (step - bw) / 2;
    const tip = `${fmtTime(p.at)}  ${t("legend_posts")} ${p.posts ?? 0} · ${t("legend_negatives")} ${p.negatives ?? 0}` +
      ` · ${t("legend_expected")} ${p.expected ?? "—"} · ${t("chart_severity")} ${t(`sev_${p.severity}`)}`;
    const g = s("g", {});
    g.appendChild(s("title", {}, tip));
    g.appendChild(s("rect", { x, y: y(p.posts || 0), width: bw, height: T + ih - y(p.posts || 0), class: "bar-posts" }));
    g.appendChild(s("rect", { x, y: y(p.negatives || 0), width: bw, height: T + ih - y(p.negatives || 0), class: "bar-neg" }));
    // Severity step: a strip under the axis whose height grows with the level.
    const level = SEV_LEVEL[p.severity] || 0;
    g.appendChild(s("rect", { x: L + i * step, y: H - 26 + (4 - level) * 3, width: step + 0.5, height: 4 + level * 3,
      class: `sev-fill-${p.severity in SEV_LEVEL ? p.severity : "none"}` }));
    svg.appendChild(g);
    if (typeof p.expected === "number") expected.push(`${(x + bw / 2).toFixed(1)},${y(p.expected).toFixed(1)}`);
  });
  if (expected.length > 1) svg.appendChild(s("polyline", { points: expected.join(" "), class: "line-expected" }));
  svg.appendChild(s("text", { x: L, y: H - 2, class: "chart-tick" }, fmtTime(data[0].at)));
  svg.appendChild(s("text", { x: W - R, y: H - 2, class: "chart-tick", "text-anchor": "end" }, fmtTime(data[data.length - 1].at)));
  legend(svg, L, 14, [["bar-posts", t("legend_posts")], ["bar-neg", t("legend_negatives")], ["key-expected", t("legend_expected")]]);
  return svg;
}

/** A tiny line of daily post counts for the sources table. values = [{date, posts}]. */
export function sparkline(values, { label = "" } = {}) {
  const W = 120, H = 30;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "spark", role: "img", "aria-label": label });
  const data = values || [];
  if (!data.length) return svg;
  const max = Math.max(1, ...data.map((v) => v.posts || 0));
  const step = data.length > 1 ? (W - 4) / (data.length - 1) : 0;
  const pts = data.map((v, i) => `${(2 + i * step).toFixed(1)},${(H - 3 - ((v.posts || 0) / max) * (H - 6)).toFixed(1)}`);
  if (pts.length > 1) svg.appendChild(s("polyline", { points: pts.join(" "), class: "spark-line" }));
  const [lx, ly] = pts[pts.length - 1].split(",");
  svg.appendChild(s("circle", { cx: lx, cy: ly, r: 2, class: "spark-dot" }));
  svg.appendChild(s("title", {}, data.map((v) => `${v.date}: ${v.posts}`).join("\n")));
  return svg;
}
