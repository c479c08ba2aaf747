// Login (/login?next=/path): name and password to POST /api/login; the server sets the HttpOnly session
// cookie and answers the CSRF token. 401 and 429 (too many failures: wait) are shown in the form.

import { post, session, loadMe } from "../api.js";
import { h, fill } from "../dom.js";
import { t, setDefault } from "../i18n.js";

/** Only same-site paths are followed after login ("//evil.example" is not one). */
function safeNext() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") && !next.startsWith("/login") ? next : "/";
}

export function mount(root, _params, { navigate, refreshTopbar }) {
  const name = h("input", { type: "text", id: "login-name", name: "username", autocomplete: "username", required: true, maxlength: "64" });
  const password = h("input", { type: "password", id: "login-password", name: "password", autocomplete: "current-password", required: true });
  const message = h("p", { class: "form-error", id: "login-error", role: "alert" });
  const button = h("button", { type: "submit", class: "btn btn-primary", id: "login-submit" }, t("login_submit"));
  const form = h("form", { class: "card login", id: "login-form", onsubmit: async (e) => {
    e.preventDefault();
    fill(message);
    button.disabled = true;
    try {
      const answer = await post("/api/login", { name: name.value.trim(), password: password.value }, { quiet: true, noRedirect: true });
      session.csrf = answer.csrf;
      await loadMe();
      if (session.me) setDefault(session.me.language);
      refreshTopbar();
      navigate(safeNext(), { replace: true });
    } catch (err) {
      password.value = "";
      if (err.status === 429) {
        // The server says how long in its message; the minutes come from the number of seconds in it.
        const seconds = Number(((err.message || "").match(/(\d+)\s*(秒|s\b)/) || [])[1]);
        fill(message, Number.isFinite(seconds) && seconds > 0 ? t("login_locked", { n: Math.max(1, Math.ceil(seconds / 60)) }) : err.message);
      } else if (err.status === 401) {
        fill(message, err.message || t("login_failed"));
      } else {
        fill(message, err.message);
      }
    } finally {
      button.disabled = false;
    }
  } },
  h("h1", {}, t("login_title")),
  h("label", { for: "login-name" }, t("login_name")), name,
  h("label", { for: "login-password" }, t("login_password")), password,
  message, button);
  fill(root, form);
  name.focus();
  return {};
}
