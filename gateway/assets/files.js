// The files page: upload with progress (XMLHttpRequest reports it; fetch does not), delete.
"use strict";
(() => {
  const { t, csrf, api, toast } = GB;
  const form = document.getElementById("upload-form");
  const progress = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");

  function upload(file) {
    return new Promise((resolve, reject) => {
      const body = new FormData();
      body.append("file", file, file.name);
      const request = new XMLHttpRequest();
      request.open("POST", "/files");
      request.setRequestHeader("x-csrf-token", csrf);
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) progress.value = Math.round((event.loaded / event.total) * 100);
      });
      request.addEventListener("load", () => {
        if (request.status >= 200 && request.status < 300) resolve();
        else {
          let message = request.statusText;
          try { message = JSON.parse(request.responseText).error.message; } catch { /* the status text */ }
          reject(new Error(message));
        }
      });
      request.addEventListener("error", () => reject(new Error(t.failed)));
      request.send(body);
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = [...document.getElementById("upload-file").files];
    if (!files.length) return;
    progress.hidden = false;
    try {
      for (const [index, file] of files.entries()) {
        status.textContent = `${file.name} (${index + 1}/${files.length})`;
        progress.value = 0;
        await upload(file);
      }
      status.textContent = t.done;
      toast(t.done);
      setTimeout(() => location.reload(), 500);
    } catch (error) {
      status.textContent = "";
      toast(`${t.failed}: ${error.message}`, true);
    } finally {
      progress.hidden = true;
    }
  });

  document.getElementById("files-table").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-delete]");
    if (!button || !confirm(t.confirm_delete_file)) return;
    try {
      await api("DELETE", `/files/${button.dataset.delete}`);
      button.closest("tr").remove();
      toast(t.done);
    } catch (error) { toast(`${t.failed}: ${error.message}`, true); }
  });
})();
