// Draws the stacked emotion chart from the JSON the page embeds (no request leaves the hub).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const holder = document.getElementById("chart-data");
  const canvas = document.getElementById("chart");
  if (!holder || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(holder.textContent);
  const colours = {neutral: "#9aa5b1", calm: "#7fb3d5", happy: "#f4c542", sad: "#5677a6",
                   angry: "#d1495b", fearful: "#8e6bbf", disgust: "#6a994e", surprised: "#f29e4c"};
  const datasets = Object.entries(data.series).map(([name, values]) => ({
    label: name, data: values, backgroundColor: colours[name] || "#888", stack: "share",
  }));
  window.clinicChart = new Chart(canvas, {
    type: "bar",
    data: {labels: data.periods, datasets},
    options: {animation: false, responsive: true,
              scales: {x: {stacked: true}, y: {stacked: true, max: 100, title: {display: true, text: "% of analysed time"}}}},
  });
  canvas.dataset.ready = "1";
});
