// The keys page: per-key and batch actions through the admin API, the 24 h usage dialog and
// the trend chart.
"use strict";
(() => {
  const { t, api, toast, el } = GB;
  const table = document.getElementById("keys-table");
  const picks = () => [...table.querySelectorAll("input.pick")];
  const picked = () => picks().filter((box) => box.checked).map((box) => box.value);

  function refreshSelection() {
    const count = picked().length;
    document.getElementById("selected-count").textContent = count;
    for (const button of document.querySelectorAll("#batch button")) button.disabled = count === 0;
  }
  table.addEventListener("change", refreshSelection);
  document.getElementById("select-all").addEventListener("change", (event) => {
    for (const box of picks()) box.checked = event.target.checked;
    refreshSelection();
  });

  async function verify(ids, progress) {
    // In rounds of ten, so that the progress bar moves and no request runs for long.
    let valid = 0, invalid = 0;
    for (let at = 0; at < ids.length; at += 10) {
      const round = ids.slice(at, at + 10);
      const answer = await api("POST", "/gemini/v1beta/verify-selected-keys", { keys: round });
      valid += answer.valid_count ?? Object.keys(answer.successful_keys || {}).length;
      invalid += answer.invalid_count ?? Object.keys(answer.failed_keys || {}).length;
      if (progress) { progress.max = ids.length; progress.value = Math.min(at + 10, ids.length); }
    }
    return { valid, invalid };
  }

  async function act(action, ids) {
    const progress = document.getElementById("batch-progress");
    try {
      if (action === "verify") {
        progress.hidden = ids.length < 2;
        const { valid, invalid } = await verify(ids, progress);
        toast(`${t.verify}: ${valid} ${t.verify_ok}, ${invalid} ${t.verify_failed}`, invalid > 0);
      } else if (action === "reset") {
        await api("POST", "/gemini/v1beta/reset-selected-fail-counts", { keys: ids });
        toast(`${t.reset}: ${t.done}`);
      } else if (action === "delete") {
        if (!confirm(ids.length > 1 ? t.confirm_delete_keys : t.confirm_delete_key)) return;
        for (const id of ids) await api("DELETE", `/keys/${encodeURIComponent(id)}`);
        toast(`${t.delete}: ${t.done}`);
      }
      setTimeout(() => location.reload(), 600);
    } catch (error) {
      toast(`${t.failed}: ${error.message}`, true);
    } finally {
      progress.hidden = true;
    }
  }

  async function usage(row) {
    const dialog = document.getElementById("usage-dialog");
    const rows = document.getElementById("usage-rows");
    document.getElementById("usage-key").textContent = row.dataset.masked;
    rows.replaceChildren();
    try {
      const answer = await api("GET", `/api/key-usage-details/${encodeURIComponent(row.dataset.keyId)}`);
      for (const model of answer.models) {
        rows.append(el("tr", {}, el("td", {}, model.model), el("td", {}, model.calls), el("td", {}, model.success),
          el("td", {}, model.failure), el("td", {}, model.prompt_tokens + model.completion_tokens)));
      }
      if (!answer.models.length) rows.append(el("tr", {}, el("td", { colspan: "5" }, t.no_data)));
      dialog.showModal();
    } catch (error) {
      toast(`${t.failed}: ${error.message}`, true);
    }
  }

  table.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    if (button.dataset.action === "usage") usage(row);
    else act(button.dataset.action, [row.dataset.keyId]);
  });
  for (const button of document.querySelectorAll("#batch button[data-batch]")) {
    button.addEventListener("click", () => act(button.dataset.batch, picked()));
  }

  let chart = null;
  async function trend(period) {
    for (const button of document.querySelectorAll("#trend-periods button")) {
      button.classList.toggle("on", button.dataset.period === period);
    }
    try {
      const width = period === "1h" ? "minute" : period === "8h" ? "minute" : "hour";
      const answer = GB.filled(await api("GET", `/api/stats/series?width=${width}&period=${period}`), width, period);
      const labels = answer.points.map((point) => new Date(point.time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
      const data = {
        labels,
        datasets: [
          { label: t.success, data: answer.points.map((point) => point.success), borderColor: "#047857", backgroundColor: "#04785733", fill: true, tension: 0.2 },
          { label: t.failure, data: answer.points.map((point) => point.failure), borderColor: "#c81e1e", backgroundColor: "#c81e1e33", fill: true, tension: 0.2 },
        ],
      };
      const canvas = document.getElementById("trend-chart");
      canvas.dataset.points = answer.listed;
      if (chart) { chart.data = data; chart.update(); }
      else chart = new Chart(canvas, { type: "line", data, options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
      canvas.dataset.rendered = "true";
    } catch (error) {
      toast(`${t.failed}: ${error.message}`, true);
    }
  }
  for (const button of document.querySelectorAll("#trend-periods button")) {
    button.addEventListener("click", () => trend(button.dataset.period));
  }
  trend("1h");
})();
