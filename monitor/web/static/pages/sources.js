// Sources (/sources): each configured source with its health, last error, last success, posts per day as a
// sparkline, and a "test now" button (one fetch and parse on the server, nothing stored) showing what it read.

import { get, post, canAct } from "../api.js";
import { h, fill, fmtTime, fmtAgo } from "../dom.js";
import { t } from "../i18n.js";
import { sparkline } from "../charts.js";
import { table, healthChip, same } from "./common.js";

export function mount(root) {
  let last = "";
  // Test results live outside the polled table so a poll does not erase them: name -> element.
  const results = new Map();
  const body = h("div", { class: "section-body", id: "source-list" });
  fill(root, h("section", { class: "card" }, h("h1", {}, t("src_title")), body));

  function resultBox(name) {
    if (!results.has(name)) results.set(name, h("div", { class: "test-result", "data-source": name }));
    return results.get(name);
  }

  async function test(name, button) {
    const box = resultBox(name);
    button.disabled = true;
    fill(box, h("p", { class: "muted" }, t("src_testing")));
    try {
      const r = await post(`/api/sources/${encodeURIComponent(name)}/test`, {}, { quiet: true });
      const items = r.posts || [];
      fill(box,
        h("p", { class: r.ok ? "ok" : "bad" }, r.ok ? t("src_test_ok", { n: items.length }) : t("src_test_fail"),
          r.error ? h("span", { class: "error-text" }, ` ${r.error}`) : null),
        (r.problems || []).length ? h("div", {}, h("strong", {}, t("src_problems")),
          h("ul", {}, r.problems.map((p) => h("li", {}, p)))) : null,
        items.length ? h("ol", { class: "test-posts" }, items.slice(0, 5).map((p) => h("li", {},
          h("span", { class: "author" }, p.author || "—"), " ", h("time", {}, fmtTime(p.published_at)), " ",
          h("span", {}, p.title || p.text || "")))) : null);
    } catch (err) {
      fill(box, h("p", { class: "bad" }, `${t("src_test_fail")}: `, err.message));
    } finally {
      button.disabled = false;
    }
  }

  const page = {
    poll: true,
    async refresh() {
      const data = await get("/api/sources");
      const [unchanged, text] = same(last, data);
      last = text;
      if (unchanged) return;
      fill(body, table([
        [t("src_title"), (s) => h("span", {}, h("strong", {}, s.name), " ", h("span", { class: "muted small" }, s.type))],
        [t("src_status"), (s) => h("span", {}, healthChip(s.enabled === false ? "disabled" : s.status),
          s.consecutive_failures ? h("span", { class: "muted small" }, ` ${t("src_failures", { n: s.consecutive_failures })}`) : null)],
        [t("src_last_success"), (s) => (s.last_success_at
          ? h("time", { datetime: s.last_success_at, title: fmtTime(s.last_success_at) }, fmtAgo(s.last_success_at)) : t("src_never"))],
        [t("src_last_error"), (s) => h("span", { class: "error-text" }, s.last_error || "—")],
        [t("src_per_day"), (s) => h("span", { class: "spark-cell" }, sparkline(s.posts_per_day, { label: s.name }),
          h("span", { class: "muted small" }, t("src_total", { n: s.posts_total ?? 0 })))],
        ["", (s) => (canAct() ? h("span", {}, testButton(s.name), resultBox(s.name)) : "")],
      ], data.items || [], { empty: t("none") }));
    },
  };

  function testButton(name) {
    const b = h("button", { type: "button", class: "btn", "data-test": name }, t("src_test"));
    b.addEventListener("click", () => test(name, b));
    return b;
  }
  return page;
}
