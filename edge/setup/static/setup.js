// The setup page: the live picture with the faces and the client region drawn over it, the region
// drawn by dragging (mouse, pen or touch), the checks and their verdict, the room profile written.
"use strict";
(function () {
  const live = document.getElementById("live");
  const csrf = live.dataset.csrf;
  const every = 1000 / Math.max(1, Number(live.dataset.fps || 4));
  const picture = document.getElementById("picture");
  const canvas = document.getElementById("overlay");
  const status = document.getElementById("status");
  const verdict = document.getElementById("verdict");
  const rows = document.querySelector("#checks tbody");
  const suggest = document.getElementById("suggest");
  const write = document.getElementById("write");
  let state = null;
  let drag = null; // {x0, y0, x1, y1} in fractions while the technician draws
  let frame = 0;

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ csrf: csrf }, body)),
      credentials: "same-origin",
    });
  }

  function text(tag, value, cls) {
    const cell = document.createElement(tag);
    cell.textContent = value;
    if (cls) cell.className = cls;
    return cell;
  }

  function draw() {
    const w = (canvas.width = picture.clientWidth || 1);
    const h = (canvas.height = picture.clientHeight || 1);
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, w, h);
    if (!state) return;
    const r = drag ? box(drag) : state.region;
    g.fillStyle = "rgba(0, 0, 0, 0.45)"; // outside the region (the therapist's chair): excluded
    g.fillRect(0, 0, w, r.y * h);
    g.fillRect(0, (r.y + r.h) * h, w, h - (r.y + r.h) * h);
    g.fillRect(0, r.y * h, r.x * w, r.h * h);
    g.fillRect((r.x + r.w) * w, r.y * h, w - (r.x + r.w) * w, r.h * h);
    g.lineWidth = 3;
    g.strokeStyle = "#fdd835";
    g.strokeRect(r.x * w, r.y * h, r.w * w, r.h * h);
    for (const f of state.faces) {
      g.strokeStyle = f.analysed ? "#00e676" : "#9e9e9e";
      g.lineWidth = f.analysed ? 3 : 2;
      g.strokeRect(f.x * w, f.y * h, f.w * w, f.h * h);
      g.fillStyle = "#80deea";
      for (const [px, py] of f.mesh || []) g.fillRect(px * w - 1, py * h - 1, 2, 2);
    }
  }

  function box(d) {
    const x = Math.min(d.x0, d.x1), y = Math.min(d.y0, d.y1);
    return { x: x, y: y, w: Math.abs(d.x1 - d.x0), h: Math.abs(d.y1 - d.y0) };
  }

  function at(event) {
    const rect = canvas.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [clamp((event.clientX - rect.left) / rect.width), clamp((event.clientY - rect.top) / rect.height)];
  }

  canvas.addEventListener("pointerdown", (event) => {
    const [x, y] = at(event);
    drag = { x0: x, y0: y, x1: x, y1: y };
    canvas.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    [drag.x1, drag.y1] = at(event);
    draw();
  });
  canvas.addEventListener("pointerup", (event) => {
    if (!drag) return;
    [drag.x1, drag.y1] = at(event);
    const r = box(drag);
    drag = null;
    if (r.w >= 0.05 && r.h >= 0.05) setRegion(r);
    else draw();
  });

  function round(v) {
    return Math.round(v * 1000) / 1000;
  }

  function setRegion(r) {
    const body = { x: round(r.x), y: round(r.y), w: round(Math.min(r.w, 1 - r.x)), h: round(Math.min(r.h, 1 - r.y)) };
    post("/region", body).then((response) => response.ok && response.json()).then((s) => s && show(s));
  }

  document.getElementById("record").addEventListener("click", () => {
    const staff = document.getElementById("staff-id").value.trim();
    const consent = document.getElementById("staff-consent").value.trim();
    if (!staff || !consent) {
      document.getElementById("enrolment").textContent = "Give the staff id and their consent reference first.";
      return;
    }
    post("/enrol", { staff_id: staff, consent: consent, seconds: 15 }).then((response) => {
      if (!response.ok) response.json().then((a) => (document.getElementById("enrolment").textContent = a.detail || "refused"));
    });
  });

  document.getElementById("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    fetch("/enrol-wav", { method: "POST", body: new FormData(event.target), credentials: "same-origin" })
      .then((response) => response.json())
      .then((answer) => {
        const note = document.getElementById("enrolment");
        note.dataset.status = answer.status || "refused";
        note.textContent = (answer.status === "stored" ? "Enrolled: " : "Not enrolled: ") + (answer.detail || "");
      });
  });

  document.getElementById("board").addEventListener("click", () => {
    const value = (id) => Number(document.getElementById(id).value);
    post("/checkerboard", { cols: value("board-cols"), rows: value("board-rows"), square_mm: value("board-mm") });
  });

  suggest.addEventListener("click", () => state && state.suggested && setRegion(state.suggested));
  write.addEventListener("click", () => {
    write.disabled = true;
    post("/profile", { note: document.getElementById("note").value })
      .then((response) => response.json())
      .then((answer) => {
        document.getElementById("written").textContent = answer.written
          ? "Written: " + answer.path
          : "Not written: " + answer.verdict;
      });
  });

  document.getElementById("report").addEventListener("click", () => {
    const body = { note: document.getElementById("note").value, photo: document.getElementById("photo").checked };
    post("/report", body)
      .then((response) => response.json())
      .then((answer) => {
        const link = document.getElementById("report-link");
        link.hidden = !answer.written;
        if (answer.written) {
          link.href = "/reports/" + answer.name;
          link.textContent = "Download " + answer.name;
        }
      });
  });

  function show(s) {
    state = s;
    status.textContent = s.running ? "Live: " + s.frames + " pictures so far." : "The preview is off: " + s.reason;
    status.className = s.running ? "notice" : "error";
    status.dataset.frames = String(s.frames);
    verdict.textContent = s.verdict.charAt(0).toUpperCase() + s.verdict.slice(1);
    verdict.className = "verdict " + (s.checks.length ? (s.ready ? "ready" : "fix") : "");
    rows.replaceChildren(
      ...s.checks.map((c) => {
        const row = document.createElement("tr");
        row.dataset.check = c.name;
        row.dataset.status = c.status;
        row.append(
          text("td", c.status.toUpperCase(), "status-" + c.status),
          text("td", c.name),
          text("td", c.plain),
          text("td", c.value === null ? "" : c.value + " " + c.unit),
          text("td", c.threshold),
          text("td", c.action),
        );
        return row;
      }),
    );
    document.getElementById("gain").textContent =
      s.gain_db ? "Suggested microphone gain change: " + (s.gain_db > 0 ? "+" : "") + s.gain_db + " dB" : "";
    const level = document.getElementById("level");
    level.value = s.level_dbfs === null ? -80 : Math.max(-80, Math.min(0, s.level_dbfs));
    document.getElementById("level-text").textContent = s.level_dbfs === null ? "no sound yet" : s.level_dbfs + " dBFS";
    const e = s.enrolment;
    const note = document.getElementById("enrolment");
    if (e) {
      note.dataset.status = e.status;
      note.textContent =
        e.status === "recording"
          ? "Recording " + e.staff_id + ": " + e.recorded_s + " of " + e.seconds + " s…"
          : e.status === "enrolling"
            ? "Enrolling " + e.staff_id + "…"
            : (e.status === "stored" ? "Enrolled " + e.staff_id + ": " : "Not enrolled: ") + e.detail;
    }
    if (s.board) {
      const b = document.getElementById("board-state");
      b.dataset.views = String(s.board.views);
      b.textContent = s.board.pattern + " board: " + s.board.views + " views (" + s.board.needed + " needed)";
    }
    const r = s.region;
    document.getElementById("region-text").textContent =
      "Region: x " + r.x + ", y " + r.y + ", width " + r.w + ", height " + r.h;
    document.getElementById("region-text").dataset.region = [r.x, r.y, r.w, r.h].join(",");
    suggest.disabled = !s.suggested;
    write.disabled = !s.ready;
    draw();
  }

  function tick() {
    fetch("/state.json", { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : null))
      .then((s) => {
        if (s) show(s);
        if (s && s.running) picture.src = "/preview.jpg?n=" + frame++;
      })
      .finally(() => setTimeout(tick, every));
  }
  picture.addEventListener("load", draw);
  window.addEventListener("resize", draw);
  window.addEventListener("pagehide", () => {
    navigator.sendBeacon("/stop", new Blob([JSON.stringify({ csrf: csrf })], { type: "application/json" }));
  });
  tick();
})();
