// The session page's timeline: an SVG drawn from the JSON the page carries (no other source).
// Rows: the fused result, then each channel; a band above them marks the disparity moments.
"use strict";
(function () {
  // "No result" must stand out from the page (WCAG 1.4.11: 3:1): white with a dark grey edge.
  const NO_RESULT = "#ffffff", NO_RESULT_EDGE = "#767676";
  const NS = "http://www.w3.org/2000/svg";
  const source = document.getElementById("timeline-data");
  const chart = document.getElementById("timeline-chart");
  if (!source || !chart) { return; }
  const data = JSON.parse(source.textContent);
  const COLOURS = data.colours;  // the product's one colour key (contract.classes.CLASS_COLOURS)
  const rows = ["fused"].concat(data.channels);
  // Drawn at the chart's own width, so labels keep their size on a phone; rows tall enough to tap there.
  const narrow = chart.clientWidth > 0 && chart.clientWidth < 600;
  const width = Math.max(320, Math.round(chart.clientWidth || 1000)), left = 56;
  const rowHeight = narrow ? 44 : 22, band = narrow ? 28 : 18, top = band + 8;
  const height = top + rows.length * rowHeight + 22;
  const x = (s) => left + (width - left - 10) * (s / data.end);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "emotion timeline per channel");

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) { node.setAttribute(k, v); }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function clock(s) {
    const m = Math.floor(s / 60), r = Math.floor(s % 60);
    return `${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`;
  }

  rows.forEach((name, i) => {
    svg.appendChild(el("text", { x: 4, y: top + i * rowHeight + 15, "font-size": 12 }, name));
  });
  const windowDetail = document.getElementById("window-detail");
  const momentDetail = document.getElementById("moment-detail");
  const section = document.getElementById("interactive");
  const CLASSES = Object.keys(COLOURS);

  // "Was this right?": agree, or the class the client seemed to show; posted as a plain form.
  function judgeForm(kind, fields, canAgree) {
    const form = document.createElement("form");
    form.method = "post";
    form.action = section.dataset.feedback;
    form.className = "judge";
    form.id = `judge-${kind}`;
    const hidden = Object.assign({ csrf: section.dataset.csrf, kind: kind, verdict: "other" }, fields);
    for (const [name, value] of Object.entries(hidden)) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = String(value);
      form.appendChild(input);
    }
    const label = document.createElement("label");
    label.textContent = "The client seemed: ";
    const select = document.createElement("select");
    select.name = "label";
    select.className = "judge-label";
    for (const c of CLASSES) { const o = document.createElement("option"); o.value = c; o.textContent = c; select.appendChild(o); }
    label.appendChild(select);
    const other = document.createElement("button");
    other.type = "submit"; other.className = "judge-other"; other.textContent = "Save";
    form.append(label, other);
    if (canAgree) {
      const agree = document.createElement("button");
      agree.type = "submit"; agree.className = "judge-agree"; agree.textContent = "Agree";
      agree.addEventListener("click", () => { form.querySelector("input[name=verdict]").value = "agree"; select.disabled = true; });
      form.append(" or ", agree);
    }
    if (kind === "moment") {
      // Whether the moment was a real mismatch between face, voice and words: fit learns the threshold from these.
      const verdict = (text, cls, value) => {
        const b = document.createElement("button");
        b.type = "submit"; b.className = cls; b.textContent = text;
        b.addEventListener("click", () => { form.querySelector("input[name=verdict]").value = value; select.disabled = true; });
        return b;
      };
      const real = document.createElement("p");
      real.append("Was this a real mismatch? ", verdict("Yes, a real mismatch", "judge-real", "agree"), " ",
        verdict("No mismatch here", "judge-none", "disagree"));
      form.append(real);
    }
    return form;
  }

  function showWindow(w) {
    windowDetail.replaceChildren();
    const head = document.createElement("div");
    const result = w.label ? `${w.label}${w.confidence !== null ? ` (${Math.round(100 * w.confidence)} %)` : ""}` : (w.state || "no result");
    head.textContent = `${clock(w.start)}–${clock(w.end)}: ${result}` +
      (w.disparity !== null ? `, disagreement ${w.disparity.toFixed(2)} of 1` : "") + (w.pulse !== null ? `, pulse ${w.pulse}/min` : "");
    const list = document.createElement("ul");
    for (const name of data.channels) {
      const c = w.channels[name];
      const item = document.createElement("li");
      item.textContent = `${name}: ${c && c.label ? c.label : "–"} (${c ? c.quality : "absent"})`;
      list.appendChild(item);
    }
    windowDetail.append(head, list, judgeForm("window", { window: w.index }, Boolean(w.label)));
    windowDetail.dataset.window = String(w.start);
  }

  // Windows, or for a long session minutes: one focusable chart, arrow keys move along it, Enter
  // opens a minute's windows, Escape goes back to the whole session. Clicking or tapping does the same.
  const PER_WINDOW_UP_TO = 600;
  const long = data.end > PER_WINDOW_UP_TO;
  const cells = svg.appendChild(el("g", { class: "cells" }));
  let view = null;  // null: the whole session; else [from, to] seconds
  let units = [];
  let selected = -1;

  function minutes() {
    const bins = new Map();
    for (const w of data.windows) {
      const k = Math.floor(w.start / 60);
      if (!bins.has(k)) { bins.set(k, []); }
      bins.get(k).push(w);
    }
    return Array.from(bins.entries()).sort((a, b) => a[0] - b[0]).map(([k, ws]) => {
      const labels = {};
      for (const name of rows) {
        const counts = {};
        for (const w of ws) {
          const l = name === "fused" ? w.label : (w.channels[name] && w.channels[name].label);
          if (l) { counts[l] = (counts[l] || 0) + 1; }
        }
        const best = Object.entries(counts).sort((a, b) => b[1] - a[1])[0];
        labels[name] = best ? { label: best[0], share: best[1] / ws.length } : null;
      }
      return { kind: "minute", start: k * 60, end: Math.min((k + 1) * 60, data.end), windows: ws, labels: labels };
    });
  }
  const MINUTES = long ? minutes() : [];

  function scaleOf() {
    const [from, to] = view || [0, data.end];
    return (s) => left + (width - left - 10) * ((s - from) / Math.max(to - from, 1));
  }

  function draw() {
    cells.replaceChildren();
    const sx = scaleOf();
    units = view === null && long ? MINUTES
      : data.windows.filter((w) => !view || (w.end > view[0] && w.start < view[1])).map((w) => ({ kind: "window", w: w, start: w.start, end: w.end }));
    units.forEach((u, k) => {
      rows.forEach((name, i) => {
        let label;
        if (u.kind === "minute") { label = u.labels[name] && u.labels[name].label; }
        else { label = name === "fused" ? u.w.label : (u.w.channels[name] && u.w.channels[name].label); }
        const rect = el("rect", {
          class: u.kind, x: sx(Math.max(u.start, view ? view[0] : 0)), y: top + i * rowHeight + 2,
          width: Math.max(sx(Math.min(u.end, view ? view[1] : data.end)) - sx(Math.max(u.start, view ? view[0] : 0)) - 0.5, 1),
          height: rowHeight - 4, fill: label ? COLOURS[label] || "#bdbdbd" : NO_RESULT,
          stroke: label ? "none" : NO_RESULT_EDGE, "data-start": u.start, "data-row": name, "data-unit": k,
        });
        rect.addEventListener("click", () => { choose(k); if (u.kind === "minute") { zoom(u); } });
        rect.addEventListener("mouseenter", () => choose(k));
        cells.appendChild(rect);
      });
    });
    axis();
    drawMoments();
    back.hidden = view === null || !long;
    where.textContent = view === null ? (long ? "Whole session, per minute: choose a minute to see its windows." : "")
      : `${clock(view[0])}–${clock(view[1])}, every window.`;
    selected = -1;
  }

  function choose(k) {
    if (k < 0 || k >= units.length) { return; }
    selected = k;
    cells.querySelectorAll("rect.on").forEach((r) => r.classList.remove("on"));
    cells.querySelectorAll(`rect[data-unit="${k}"]`).forEach((r) => r.classList.add("on"));
    const u = units[k];
    if (u.kind === "window") { showWindow(u.w); } else { showMinute(u); }
  }

  function zoom(u) {
    view = [u.start, u.end];
    draw();
    choose(0);
  }

  function showMinute(u) {
    windowDetail.replaceChildren();
    const head = document.createElement("div");
    const fused = u.labels.fused;
    head.textContent = `${clock(u.start)}–${clock(u.end)}: ` +
      (fused ? `mostly ${fused.label} (${Math.round(100 * fused.share)} % of its windows)` : "no result") +
      `, ${u.windows.length} windows. Press Enter or click to see them.`;
    const list = document.createElement("ul");
    for (const name of data.channels) {
      const item = document.createElement("li");
      const c = u.labels[name];
      item.textContent = `${name}: ${c ? `mostly ${c.label}` : "no result"}`;
      list.appendChild(item);
    }
    windowDetail.append(head, list);
  }

  svg.setAttribute("tabindex", "0");
  svg.setAttribute("role", "application");
  svg.setAttribute("aria-label", "Emotion timeline. Left and right arrows move along it; Enter opens a minute; Escape returns to the whole session.");
  svg.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      choose(Math.min(Math.max(selected + (e.key === "ArrowRight" ? 1 : -1), 0), units.length - 1));
    } else if (e.key === "Home") { choose(0); }
    else if (e.key === "End") { choose(units.length - 1); }
    else if (e.key === "Enter" && selected >= 0 && units[selected].kind === "minute") { zoom(units[selected]); }
    else if (e.key === "Escape" && view !== null && long) { view = null; draw(); }
    else { return; }
    e.preventDefault();
  });
  svg.addEventListener("focus", () => { if (selected < 0) { choose(0); } });

  const axisGroup = svg.appendChild(el("g", { class: "axis" }));
  function axis() {
    axisGroup.replaceChildren();
    const [from, to] = view || [0, data.end];
    const sx = scaleOf();
    const step = Math.max(10, Math.round((to - from) / 8 / 10) * 10);
    for (let s = from; s <= to; s += step) {
      axisGroup.appendChild(el("text", { x: sx(s), y: height - 4, "font-size": 11, "text-anchor": "middle" }, clock(s)));
    }
  }

  const controls = document.createElement("div");
  controls.className = "timeline-controls";
  const back = document.createElement("button");
  back.type = "button"; back.id = "timeline-back"; back.textContent = "Whole session"; back.hidden = true;
  back.addEventListener("click", () => { view = null; draw(); svg.focus(); });
  const where = document.createElement("span");
  where.id = "timeline-where"; where.className = "muted";
  controls.append(back, " ", where);
  chart.before(controls);

  function showMoment(m, rect) {
    svg.querySelectorAll("rect.moment.on").forEach((r) => r.classList.remove("on"));
    rect.classList.add("on");
    momentDetail.replaceChildren();
    const head = document.createElement("div");
    head.textContent = `${clock(m.start)}–${clock(m.end)}: the ${m.channels[0]} and the ${m.channels[1]} disagreed ` +
      `(strength ${m.peak.toFixed(2)} of 1).`;
    momentDetail.appendChild(head);
    const said = document.createElement("ul");
    said.id = "moment-said";
    if (!data.transcripts_kept) {
      const note = document.createElement("li");
      note.textContent = "Transcripts are not kept in this room.";
      said.appendChild(note);
    } else if (m.said.length === 0) {
      const note = document.createElement("li");
      note.textContent = "Nothing was transcribed during this moment.";
      said.appendChild(note);
    }
    for (const u of m.said) {
      const item = document.createElement("li");
      item.textContent = `${clock(u.start)} “${u.text}”${u.label ? ` [${u.label}]` : ""}`;
      said.appendChild(item);
    }
    momentDetail.appendChild(said);
    momentDetail.appendChild(judgeForm("moment", { start: m.start, end: m.end }, false));
  }

  const momentGroup = svg.appendChild(el("g", { class: "moments" }));
  function drawMoments() {
    momentGroup.replaceChildren();
    const sx = scaleOf();
    const [from, to] = view || [0, data.end];
    data.moments.forEach((m, i) => {
      if (m.end < from || m.start > to) { return; }
      const rect = el("rect", {
        class: "moment", id: `moment-${i}`, x: sx(Math.max(m.start, from)), y: 2, height: band,
        width: Math.max(sx(Math.min(m.end, to)) - sx(Math.max(m.start, from)), 6), fill: "#ef6c00", "fill-opacity": 0.8, tabindex: 0,
      });
      rect.appendChild(el("title", {}, `disparity ${clock(m.start)}–${clock(m.end)}`));
      rect.addEventListener("click", () => showMoment(m, rect));
      rect.addEventListener("keydown", (e) => { if (e.key === "Enter") { showMoment(m, rect); } });
      momentGroup.appendChild(rect);
    });
  }
  draw();
  chart.appendChild(svg);
  const legend = document.createElement("ul");
  legend.className = "legend"; legend.id = "timeline-legend";
  for (const [name, colour] of Object.entries(COLOURS).concat([["no result", NO_RESULT]])) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = colour;
    item.append(swatch, ` ${name}`);
    legend.appendChild(item);
  }
  chart.after(legend);
})();
