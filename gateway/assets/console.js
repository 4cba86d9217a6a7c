// What every console page shares: the strings of its language, the CSRF token, calls to the
// admin API with the session (and the token on every change), a toast, a confirmation.
"use strict";
const GB = (() => {
  const t = JSON.parse(document.getElementById("i18n")?.textContent || "{}");
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  async function api(method, url, body) {
    const headers = { "x-csrf-token": csrf, accept: "application/json" };
    const options = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      if (body instanceof FormData || body instanceof Blob) {
        options.body = body;
      } else {
        headers["content-type"] = "application/json";
        options.body = JSON.stringify(body);
      }
    }
    const response = await fetch(url, options);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { raw: text }; }
    if (response.status === 401) { toast(t.session_over, true); }
    if (!response.ok) {
      const message = data?.error?.message || data?.detail || data?.raw || response.statusText;
      const error = new Error(message);
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  }

  let toastTimer = null;
  function toast(message, bad) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.className = bad ? "bad" : "";
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
  }

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
    return node;
  }

  async function copy(text) {
    try { await navigator.clipboard.writeText(text); toast(t.copied); }
    catch { toast(t.failed, true); }
  }

  // A series with a point for every bucket of the period (the API lists only buckets with
  // calls), so that a quiet time shows as zero rather than as nothing.
  function filled(answer, width, period) {
    const step = { minute: 60e3, hour: 3600e3, day: 86400e3 }[width];
    const span = { "1h": 3600e3, "8h": 8 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 }[period];
    const end = Math.floor(Date.now() / step) * step;
    const byTime = new Map(answer.points.map((point) => [Date.parse(point.time), point]));
    const points = [];
    for (let at = end - Math.floor(span / step) * step + step; at <= end; at += step) {
      const point = byTime.get(at);
      points.push(point || { time: new Date(at).toISOString(), calls: 0, success: 0, failure: 0 });
    }
    return Object.assign({}, answer, { points, listed: answer.points.length });
  }

  return { t, csrf, api, toast, el, copy, filled };
})();
