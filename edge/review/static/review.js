// The session page's timeline: an SVG drawn from the JSON the page carries (no other source).
// Rows: the fused result, then each channel; a band above them marks the disparity moments.
"use strict";
(function () {
  const COLOURS = {
    neutral: "#9e9e9e", calm: "#80cbc4", happy: "#fdd835", sad: "#42a5f5",
    angry: "#e53935", fearful: "#8e24aa", disgust: "#6d4c41", surprised: "#fb8c00",
  };
  const NS = "http://www.w3.org/2000/svg";
  const source = document.getElementById("timeline-data");
  const chart = document.getElementById("timeline-chart");
  if (!source || !chart) { return; }
  const data = JSON.parse(source.textContent);
  const rows = ["fused"].concat(data.channels);
  const width = 1000, left = 70, rowHeight = 22, band = 18, top = band + 8;
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

  function showWindow(w, rect) {
    svg.querySelectorAll("rect.window.on").forEach((r) => r.classList.remove("on"));
    rect.classList.add("on");
    windowDetail.replaceChildren();
    const head = document.createElement("div");
    const result = w.label ? `${w.label}${w.confidence !== null ? ` (${Math.round(100 * w.confidence)} %)` : ""}` : (w.state || "no result");
    head.textContent = `${clock(w.start)}–${clock(w.end)}: ${result}` +
      (w.disparity !== null ? `, disparity ${w.disparity}` : "") + (w.pulse !== null ? `, pulse ${w.pulse}/min` : "");
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

  data.windows.forEach((w) => {
    rows.forEach((name, i) => {
      const label = name === "fused" ? w.label : (w.channels[name] && w.channels[name].label);
      const rect = el("rect", {
        class: "window", x: x(w.start), y: top + i * rowHeight + 2,
        width: Math.max(x(w.end) - x(w.start) - 0.5, 1), height: rowHeight - 4,
        fill: label ? COLOURS[label] || "#bdbdbd" : "#eeeeee",
        "data-start": w.start, "data-row": name,
      });
      rect.addEventListener("mouseenter", () => showWindow(w, rect));
      rect.addEventListener("focus", () => showWindow(w, rect));
      rect.addEventListener("click", () => showWindow(w, rect));
      rect.setAttribute("tabindex", "0");
      svg.appendChild(rect);
    });
  });

  function showMoment(m, rect) {
    svg.querySelectorAll("rect.moment.on").forEach((r) => r.classList.remove("on"));
    rect.classList.add("on");
    momentDetail.replaceChildren();
    const head = document.createElement("div");
    head.textContent = `Disparity ${clock(m.start)}–${clock(m.end)}: ${m.channels[0]} vs ${m.channels[1]}, peak ${m.peak}`;
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

  data.moments.forEach((m, i) => {
    const rect = el("rect", {
      class: "moment", id: `moment-${i}`, x: x(m.start), y: 2, height: band,
      width: Math.max(x(m.end) - x(m.start), 3), fill: "#ef6c00", "fill-opacity": 0.8, tabindex: 0,
    });
    rect.appendChild(el("title", {}, `disparity ${clock(m.start)}–${clock(m.end)}`));
    rect.addEventListener("click", () => showMoment(m, rect));
    rect.addEventListener("keydown", (e) => { if (e.key === "Enter") { showMoment(m, rect); } });
    svg.appendChild(rect);
  });
  for (let s = 0; s <= data.end; s += Math.max(10, Math.round(data.end / 8 / 10) * 10)) {
    svg.appendChild(el("text", { x: x(s), y: height - 4, "font-size": 11, "text-anchor": "middle" }, clock(s)));
  }
  chart.appendChild(svg);
})();
