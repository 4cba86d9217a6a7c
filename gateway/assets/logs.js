// The logs page: selection, delete selected, clear all (confirmed), delete and copy a detail.
"use strict";
(() => {
  const { t, api, toast, copy } = GB;
  const table = document.getElementById("errors-table");
  const done = () => { toast(t.done); setTimeout(() => location.assign(location.pathname + location.search.replace(/([?&])detail=\d+/, "$1")), 500); };
  const fail = (error) => toast(`${t.failed}: ${error.message}`, true);

  if (table) {
    const picks = () => [...table.querySelectorAll("input.pick")];
    const picked = () => picks().filter((box) => box.checked).map((box) => Number(box.value));
    const refresh = () => {
      document.getElementById("selected-count").textContent = picked().length;
      document.getElementById("delete-selected").disabled = picked().length === 0;
    };
    table.addEventListener("change", refresh);
    document.getElementById("select-all").addEventListener("change", (event) => {
      for (const box of picks()) box.checked = event.target.checked;
      refresh();
    });
    document.getElementById("delete-selected").addEventListener("click", async () => {
      if (!confirm(t.confirm_delete_logs)) return;
      try { await api("DELETE", "/api/logs/errors", { ids: picked() }); done(); } catch (error) { fail(error); }
    });
    document.getElementById("clear-all").addEventListener("click", async () => {
      if (!confirm(t.confirm_clear_all)) return;
      try { await api("DELETE", "/api/logs/errors/all"); done(); } catch (error) { fail(error); }
    });
  }

  const detail = document.getElementById("log-detail");
  if (detail) {
    document.getElementById("delete-detail").addEventListener("click", async () => {
      if (!confirm(t.confirm_delete_logs)) return;
      try { await api("DELETE", `/api/logs/errors/${detail.dataset.logId}`); done(); } catch (error) { fail(error); }
    });
  }
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => copy(document.querySelector(button.dataset.copy)?.textContent || ""));
  }
})();
