// Throughput per day and agreement per labeler (Chart.js), from the page's json_script data.
(function () {
  "use strict";
  const source = document.getElementById("quality-data");
  if (!source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const perDay = document.getElementById("per-day");
  if (perDay) {
    new Chart(perDay, {
      type: "bar",
      data: {
        labels: data.days,
        datasets: [
          { label: "rankings", data: data.rankings, backgroundColor: "#2456c9" },
          { label: "demonstrations", data: data.demonstrations, backgroundColor: "#1f7a43" },
        ],
      },
      options: { animation: false, scales: { x: { stacked: true }, y: { stacked: true } } },
    });
  }
  const agreement = document.getElementById("agreement");
  if (agreement) {
    new Chart(agreement, {
      type: "bar",
      data: {
        labels: data.labelers,
        datasets: [{
          label: "agreement with other labelers",
          data: data.agreement.map((value) => (value === null ? null : Math.round(value * 100))),
          backgroundColor: "#9a6700",
        }],
      },
      options: { animation: false, indexAxis: "y", scales: { x: { min: 0, max: 100 } } },
    });
  }
})();
