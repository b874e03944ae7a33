// Live charts of a training job's metrics (Chart.js) and its table of sample generations,
// polling while the job runs. Sample text is untrusted: it is written with textContent only.
(function () {
  "use strict";
  const section = document.getElementById("job-charts");
  if (!section || typeof Chart === "undefined") return;
  const diagnostics = document.getElementById("job-diagnostics");
  const url = section.dataset.url;
  const charts = new Map();
  const palette = ["#2456c9", "#b3261e", "#1f7a43", "#9a6700"];

  function draw(canvas, steps, series) {
    const wanted = canvas.dataset.metrics.split(",").filter((name) => series[name]);
    if (!wanted.length) {
      canvas.closest("figure").hidden = true;
      return;
    }
    canvas.closest("figure").hidden = false;
    const datasets = wanted.map((name, index) => ({
      label: name,
      data: series[name],
      borderColor: palette[index % palette.length],
      pointRadius: 0,
      borderWidth: 1.5,
      spanGaps: true,
    }));
    let chart = charts.get(canvas);
    if (!chart) {
      chart = new Chart(canvas, {
        type: "line",
        data: { labels: steps, datasets },
        options: {
          animation: false,
          responsive: true,
          interaction: { mode: "index", intersect: false },
          scales: { x: { title: { display: true, text: "step" } } },
        },
      });
      charts.set(canvas, chart);
    } else {
      chart.data.labels = steps;
      chart.data.datasets = datasets;
      chart.update();
    }
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  function showSamples(samples) {
    const box = document.getElementById("job-samples");
    if (!box) return false;
    const body = box.querySelector("tbody");
    const rows = [];
    samples.forEach((table) => {
      table.rows.forEach((sample) => {
        const row = document.createElement("tr");
        cell(row, String(table.step));
        cell(row, sample.prompt);
        cell(row, sample.response);
        cell(row, sample.reward === null ? "" : Number(sample.reward).toFixed(3));
        cell(row, sample.ended === null ? "" : sample.ended ? "yes" : "no (no EOS)");
        rows.push(row);
      });
    });
    body.replaceChildren(...rows);
    box.hidden = rows.length === 0;
    return rows.length > 0;
  }

  async function refresh() {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) return false;
    const body = await response.json();
    section.querySelector("[data-empty]").hidden = body.steps.length > 0;
    section.querySelectorAll("canvas").forEach((canvas) => draw(canvas, body.steps, body.series));
    if (diagnostics) {
      // Shown before drawing, so that the charts are sized in a visible box.
      const canvases = diagnostics.querySelectorAll("canvas");
      const hasSeries = [...canvases].some((canvas) =>
        canvas.dataset.metrics.split(",").some((name) => body.series[name]),
      );
      const hasSamples = showSamples(body.samples || []);
      diagnostics.hidden = !(hasSeries || hasSamples);
      canvases.forEach((canvas) => draw(canvas, body.steps, body.series));
    }
    return ["succeeded", "failed", "cancelled"].includes(body.state);
  }

  async function loop() {
    const finished = await refresh().catch(() => false);
    if (!finished && section.dataset.finished !== "true") setTimeout(loop, 2000);
  }
  loop();
})();
