// The settings page: each value's editor by its kind, tabs, save (hot reload) with a refused
// value's message next to its field, resets, the model picker and the token generator.
"use strict";
(() => {
  const { t, api, toast, el } = GB;
  const form = document.getElementById("config-form");
  const rows = [...form.querySelectorAll(".setting")];

  // Tabs: one panel at a time (every panel shows without scripts).
  const tabs = [...document.querySelectorAll("#config-tabs a")];
  function show(id) {
    for (const panel of form.querySelectorAll(".tab-panel")) panel.hidden = panel.dataset.tab !== id;
    for (const tab of tabs) tab.classList.toggle("on", tab.dataset.tab === id);
  }
  for (const tab of tabs) tab.addEventListener("click", (event) => { event.preventDefault(); show(tab.dataset.tab); history.replaceState(null, "", `#tab-${tab.dataset.tab}`); });
  const fromHash = () => show((location.hash.match(/^#tab-(\w+)/) || [])[1] || tabs[0]?.dataset.tab);
  window.addEventListener("hashchange", fromHash);
  fromHash();

  function token() {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    return "sk-" + [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  // gemini-balance's proxy check: every proxy of PROXIES (as saved) against the upstream.
  async function checkProxies(results) {
    results.replaceChildren(el("li", { class: "muted" }, "…"));
    try {
      const answer = await api("POST", "/proxy/check-all");
      results.replaceChildren(...answer.results.map((check) => el("li", { class: check.is_available ? "ok" : "error" },
        el("code", {}, check.proxy), " — ",
        check.is_available ? `${t.proxy_reachable} (${Math.round(check.response_time * 1000)} ms, HTTP ${check.status_code})`
          : `${t.proxy_unreachable}: ${check.error_message}`)));
      if (!answer.results.length) results.replaceChildren(el("li", { class: "muted" }, t.none));
    } catch (error) {
      results.replaceChildren(el("li", { class: "error" }, `${t.failed}: ${error.message}`));
    }
  }

  function textInput(value, picker) {
    const input = el("input", { type: "text", value: value ?? "", spellcheck: "false" });
    if (picker === "model") input.setAttribute("list", "model-names");
    return input;
  }

  function listEditor(row, items) {
    const box = el("div", { class: "list-editor" });
    const add = (value) => {
      const item = el("div", { class: "item" }, textInput(value, row.dataset.picker),
        el("button", { type: "button", class: "danger", onclick: () => item.remove() }, t.remove_item));
      box.insertBefore(item, controls);
      return item;
    };
    const controls = el("div", { class: "item" },
      el("button", { type: "button", onclick: () => add("").querySelector("input").focus() }, t.add_item));
    const results = row.dataset.name === "PROXIES" ? el("ul", { class: "proxy-checks" }) : null;
    if (results) {
      controls.append(el("button", { type: "button", class: "check-proxies", onclick: () => checkProxies(results) }, t.check_proxies));
    }
    if (row.dataset.name === "ALLOWED_TOKENS") {
      controls.append(el("button", { type: "button", class: "generate", onclick: () => add(token()) }, t.generate_token));
    }
    box.append(controls);
    if (results) box.append(results);
    for (const item of items) add(typeof item === "string" ? item : JSON.stringify(item));
    box.read = () => [...box.querySelectorAll(".item input")].map((input) => input.value.trim()).filter((value) => value !== "");
    return box;
  }

  function objectEditor(object) {
    const box = el("div", { class: "object-editor" });
    const add = (name, value) => {
      const item = el("div", { class: "item" }, el("input", { type: "text", value: name, class: "entry-name" }),
        el("input", { type: "text", value: typeof value === "string" ? value : JSON.stringify(value), class: "entry-value" }),
        el("button", { type: "button", class: "danger", onclick: () => item.remove() }, t.remove_item));
      box.insertBefore(item, controls);
    };
    const controls = el("div", { class: "item" }, el("button", { type: "button", onclick: () => add("", "") }, t.add_entry));
    box.append(controls);
    for (const [name, value] of Object.entries(object || {})) add(name, value);
    box.read = () => {
      const out = {};
      for (const item of box.querySelectorAll(".item")) {
        const name = item.querySelector(".entry-name")?.value.trim();
        if (!name) continue;
        const text = item.querySelector(".entry-value").value.trim();
        let value = text;
        if (text !== "" && !Number.isNaN(Number(text))) value = Number(text);
        else if (text === "true" || text === "false") value = text === "true";
        out[name] = value;
      }
      return out;
    };
    return box;
  }

  function jsonEditor(value) {
    const area = el("textarea", { rows: "6", spellcheck: "false" });
    area.value = JSON.stringify(value, null, 2);
    area.read = () => JSON.parse(area.value);
    return area;
  }

  function editorFor(row, value) {
    const kind = row.dataset.kind;
    if (kind === "boolean") {
      const box = el("input", { type: "checkbox" });
      box.checked = value === true;
      box.read = () => box.checked;
      return box;
    }
    if (kind === "integer" || kind === "number") {
      const input = el("input", { type: "number", step: kind === "integer" ? "1" : "any", value: value ?? "" });
      input.read = () => (input.value.trim() === "" ? null : Number(input.value));
      return input;
    }
    if (kind === "list" && (value || []).every((item) => typeof item !== "object")) return listEditor(row, value || []);
    if (kind === "object" && value && typeof value === "object" && !Array.isArray(value)
        && Object.values(value).every((item) => item === null || typeof item !== "object")) return objectEditor(value);
    if (kind === "list" || kind === "object") return jsonEditor(value);
    const input = textInput(value, row.dataset.picker);
    input.read = () => input.value;
    return input;
  }

  const original = new Map();
  for (const row of rows) {
    const code = row.querySelector("code.value");
    let value = null;
    try { value = JSON.parse(code.textContent); } catch { continue; }
    original.set(row.dataset.name, value);
    if (row.dataset.editable !== "true") continue;
    const editor = editorFor(row, value);
    editor.classList.add("field");
    row.querySelector(".editor").append(editor);
    row.editor = editor;
    code.hidden = true;
  }

  function clearErrors() {
    for (const box of form.querySelectorAll("[data-error-for]")) box.textContent = "";
  }

  function showError(message) {
    const named = message.match(/setting ([A-Z0-9_]+)/) || message.match(/\b([A-Z][A-Z0-9_]{3,})\b/);
    const box = named && form.querySelector(`[data-error-for="${named[1]}"]`);
    if (box) {
      box.textContent = message;
      const panel = box.closest(".tab-panel");
      if (panel) show(panel.dataset.tab);
      box.scrollIntoView({ block: "center" });
    }
    toast(message, true);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const changes = {};
    for (const row of rows) {
      if (!row.editor) continue;
      let value;
      try { value = row.editor.read(); } catch (error) {
        showError(`setting ${row.dataset.name}: ${t.invalid_json}: ${error.message}`);
        return;
      }
      if (JSON.stringify(value) !== JSON.stringify(original.get(row.dataset.name))) changes[row.dataset.name] = value;
    }
    const status = document.getElementById("save-status");
    if (!Object.keys(changes).length) { status.textContent = t.none; return; }
    try {
      await api("PUT", "/api/config", changes);
      status.textContent = t.saved;
      toast(t.saved);
      setTimeout(() => location.reload(), 800);
    } catch (error) {
      status.textContent = "";
      showError(error.message);
    }
  });

  form.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-reset]");
    if (!button) return;
    try {
      await api("DELETE", `/configs/${encodeURIComponent(button.dataset.reset)}`);
      toast(t.done);
      setTimeout(() => location.reload(), 500);
    } catch (error) { showError(error.message); }
  });

  document.getElementById("reset-all").addEventListener("click", async () => {
    if (!confirm(t.confirm_reset_all)) return;
    try {
      await api("POST", "/api/config/reset");
      toast(t.done);
      setTimeout(() => location.reload(), 500);
    } catch (error) { showError(error.message); }
  });
})();
