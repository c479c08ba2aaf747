// The reply-script library (/scripts, 标准话术库): every script's newest version by category and stage. An admin
// edits one (saving makes the next version; the old wording stays for the record), writes a new one, or retires
// one; others read. Placeholders: {name} {ticket} {deadline} {brand} {handler}.

import { get, post, session } from "../api.js";
import { h, fill, section, fmtTime, notice } from "../dom.js";
import { t } from "../i18n.js";
import { table, same } from "./common.js";
import { stageText } from "./ticket_more.js";

const CATEGORIES = ["product_quality", "service_experience", "contract_performance", "ethics_compliance"];
const STAGES = ["acknowledge", "apology", "solution", "followup"];

function categoryText(code) {
  return code ? t(`cat_${code}`) : t("sc_any");
}

export function mount(root) {
  const admin = session.me && session.me.role === "admin";
  let last = "";
  const listSection = section(t("sc_library"), "scripts-library");
  listSection.el.id = "script-library";
  const showInactive = h("input", { type: "checkbox", id: "scripts-inactive" });
  showInactive.addEventListener("change", () => refresh(true));

  // The editor (admins): empty = a new script; "edit" fills it with a script and its key (saving = next version).
  const editor = section(t("sc_editor"), "script-editor");
  editor.el.id = "script-editor";
  const key = h("input", { type: "text", id: "script-key", maxlength: "64", placeholder: t("sc_key_placeholder") });
  const category = h("select", { id: "script-category" }, h("option", { value: "" }, t("sc_any")),
    CATEGORIES.map((c) => h("option", { value: c }, categoryText(c))));
  const stage = h("select", { id: "script-stage" }, STAGES.map((s) => h("option", { value: s }, stageText(s))));
  const title = h("input", { type: "text", id: "script-title", maxlength: "200", placeholder: t("col_title") });
  const body = h("textarea", { id: "script-body", rows: "6", maxlength: "8000", placeholder: t("sc_body_placeholder") });
  const save = h("button", { type: "submit", class: "btn btn-primary", id: "script-save" }, t("sc_save"));
  const clear = h("button", { type: "button", class: "btn", id: "script-new" }, t("sc_new"));
  clear.addEventListener("click", () => { key.value = ""; title.value = ""; body.value = ""; key.readOnly = false; });
  const editForm = h("form", { class: "action-form", id: "script-form", onsubmit: async (e) => {
    e.preventDefault();
    save.disabled = true;
    try {
      const saved = await post("/api/scripts", { key: key.value.trim() || null, category: category.value || null,
        stage: stage.value, title: title.value, body: body.value });
      notice(t("sc_saved", { key: saved.key, v: saved.version }), "ok");
      key.value = saved.key;
      key.readOnly = true;
      await refresh(true);
    } catch { /* shown by the API helper */ } finally { save.disabled = false; }
  } }, h("p", { class: "muted" }, t("sc_placeholders")),
    h("div", { class: "action-row" }, key, category, stage), title, body, h("div", { class: "action-row" }, save, clear));
  fill(editor.body, editForm);

  function edit(s) {
    key.value = s.key;
    key.readOnly = true;
    category.value = s.category || "";
    stage.value = s.stage;
    title.value = s.title;
    body.value = s.body;
    body.focus();
  }

  async function deactivate(s, button) {
    button.disabled = true;
    try {
      await post(`/api/scripts/${encodeURIComponent(s.key)}/deactivate`, {});
      notice(t("sc_deactivated", { key: s.key }), "ok");
      await refresh(true);
    } catch { button.disabled = false; }
  }

  fill(root, h("h1", {}, t("sc_library")),
    h("label", { class: "inline" }, showInactive, " ", t("sc_show_inactive")), listSection.el, admin ? editor.el : null);

  async function refresh(force = false) {
    const data = await get(`/api/scripts${showInactive.checked ? "?inactive=1" : ""}`);
    const [unchanged, text] = same(last, data);
    last = text;
    if (unchanged && !force) return;
    fill(listSection.body, table([
      [t("sc_key"), (s) => s.key],
      [t("sc_version"), (s) => `v${s.version}`, "num"],
      [t("tk_category"), (s) => categoryText(s.category)],
      [t("sc_stage"), (s) => stageText(s.stage)],
      [t("col_title"), (s) => s.title],
      [t("sc_body"), (s) => h("span", { class: "pre script-text" }, s.body)],
      [t("col_status"), (s) => (s.active ? t("sc_active") : t("sc_inactive"))],
      [t("sc_updated"), (s) => `${fmtTime(s.created_at)} · ${s.created_by || "—"}`],
      ...(admin ? [[t("col_action"), (s) => {
        const e = h("button", { type: "button", class: "btn script-edit", "data-key": s.key }, t("sc_edit"));
        e.addEventListener("click", () => edit(s));
        const d = s.active ? h("button", { type: "button", class: "btn script-deactivate", "data-key": s.key }, t("sc_deactivate")) : null;
        if (d) d.addEventListener("click", () => deactivate(s, d));
        return h("span", { class: "buttons" }, e, " ", d);
      }]] : []),
    ], data.items || [], { empty: t("none"), rowClass: (s) => (s.active ? "" : "inactive") }));
  }

  return { refresh: () => refresh() };
}
