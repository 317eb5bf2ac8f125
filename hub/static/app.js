// Draws the trends chart from the JSON the page embeds (no request leaves the hub). The clinic as a
// whole: the classes' shares stacked per period. Sites or rooms: one line per site or room for the
// chosen class, never pooled; a period where a cell is not shown is a gap, not a jump. The legend
// toggles a series; the tooltip names the series, its share and the sessions behind it.
"use strict";
const SERIES_COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#999933"];
const DASHES = [[], [6, 3], [2, 2], [8, 3, 2, 3]];

document.addEventListener("DOMContentLoaded", () => {
  const holder = document.getElementById("chart-data");
  const canvas = document.getElementById("chart");
  if (!holder || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(holder.textContent);
  const CLASS_COLOURS = data.colours;  // the product's one colour key (contract.classes.CLASS_COLOURS)
  for (const swatch of document.querySelectorAll(".swatch[data-class]")) {
    swatch.style.background = CLASS_COLOURS[swatch.dataset.class] || "#888";  // CSSOM: allowed by the page's CSP
  }
  const picker = document.getElementById("chart-class");
  const tooltip = {
    callbacks: {
      label: (item) => {
        const s = item.dataset.meta;
        const n = s.sessions[item.dataIndex];
        return `${item.dataset.label}: ${item.formattedValue} % (n = ${n} session${n === 1 ? "" : "s"})`;
      },
    },
  };
  function stacked() {
    const s = data.series[0] || {shares: {}, sessions: []};
    return data.classes.map((c) => ({
      label: c, data: s.shares[c] || [], backgroundColor: CLASS_COLOURS[c], borderColor: "#ffffff",
      borderWidth: 1, stack: "share", meta: s,
    }));
  }
  function lines(cls) {
    return data.series.map((s, i) => ({
      label: s.name, data: s.shares[cls], meta: s, spanGaps: false, tension: 0,
      borderColor: SERIES_COLOURS[i % SERIES_COLOURS.length], backgroundColor: SERIES_COLOURS[i % SERIES_COLOURS.length],
      borderDash: DASHES[Math.floor(i / SERIES_COLOURS.length) % DASHES.length], pointRadius: 3,
    }));
  }
  const isLines = data.kind === "lines";
  const cls = picker ? picker.value : data.class;
  window.clinicChart = new Chart(canvas, {
    type: isLines ? "line" : "bar",
    data: {labels: data.periods, datasets: isLines ? lines(cls) : stacked()},
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      plugins: {tooltip: tooltip, legend: {position: "bottom"}},
      scales: isLines
        ? {y: {min: 0, max: 100, title: {display: true, text: `% of analysed time: ${cls}`}}}
        : {x: {stacked: true}, y: {stacked: true, max: 100, title: {display: true, text: "% of analysed time"}}},
    },
  });
  if (picker && isLines) {
    picker.addEventListener("change", () => {
      window.clinicChart.data.datasets = lines(picker.value);
      window.clinicChart.options.scales.y.title.text = `% of analysed time: ${picker.value}`;
      window.clinicChart.update();
    });
  }
  // Filters cascade: a site offers only its rooms.
  const site = document.getElementById("f-site");
  const room = document.getElementById("f-room");
  if (site && room) {
    const narrow = () => {
      for (const o of room.options) {
        if (!o.dataset.site) continue;
        o.hidden = Boolean(site.value) && o.dataset.site !== site.value;
        if (o.hidden && o.selected) room.value = "";
      }
    };
    site.addEventListener("change", narrow);
    narrow();
  }
  canvas.dataset.ready = "1";
});
