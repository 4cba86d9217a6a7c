// The statistics page's charts: calls and failures per minute, hour or day; tokens per day per
// key and per client token (stacked).
"use strict";
(() => {
  const { t, api, toast } = GB;
  const palette = ["#1a56db", "#047857", "#b45309", "#7e22ce", "#c81e1e", "#0e7490", "#4d7c0f", "#be185d", "#374151", "#a16207"];
  const charts = {};
  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (charts[id]) charts[id].destroy();
    config.options = Object.assign({ animation: false, maintainAspectRatio: false }, config.options || {});
    charts[id] = new Chart(canvas, config);
    canvas.dataset.rendered = "true";
  }

  async function series(width, period) {
    for (const button of document.querySelectorAll("#series-widths button")) button.classList.toggle("on", button.dataset.width === width);
    try {
      const answer = GB.filled(await api("GET", `/api/stats/series?width=${width}&period=${period}`), width, period);
      const label = (time) => {
        const date = new Date(time);
        return width === "day" ? date.toLocaleDateString() : width === "hour" ? `${date.toLocaleDateString()} ${date.getHours()}:00` : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      };
      document.getElementById("series-chart").dataset.points = answer.listed;
      draw("series-chart", {
        type: "bar",
        data: {
          labels: answer.points.map((point) => label(point.time)),
          datasets: [
            { label: t.success, data: answer.points.map((point) => point.success), backgroundColor: "#047857" },
            { label: t.failure, data: answer.points.map((point) => point.failure), backgroundColor: "#c81e1e" },
          ],
        },
        options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
      });
    } catch (error) { toast(`${t.failed}: ${error.message}`, true); }
  }

  async function tokens(groupBy, id) {
    try {
      const answer = await api("GET", `/api/stats/tokens?group_by=${groupBy}&days=7`);
      const days = [...new Set(answer.rows.map((row) => row.day))].sort();
      const groups = [...new Set(answer.rows.map((row) => (groupBy === "key" ? row.key : row.client)))];
      const datasets = groups.map((group, index) => ({
        label: group,
        backgroundColor: palette[index % palette.length],
        data: days.map((day) => answer.rows.filter((row) => row.day === day && (groupBy === "key" ? row.key : row.client) === group)
          .reduce((sum, row) => sum + row.total_tokens, 0)),
      }));
      document.getElementById(id).dataset.points = answer.rows.length;
      draw(id, { type: "bar", data: { labels: days, datasets }, options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } } });
    } catch (error) { toast(`${t.failed}: ${error.message}`, true); }
  }

  for (const button of document.querySelectorAll("#series-widths button")) {
    button.addEventListener("click", () => series(button.dataset.width, button.dataset.period));
  }
  series("minute", "24h");
  tokens("key", "tokens-key-chart");
  tokens("client", "tokens-client-chart");
})();
