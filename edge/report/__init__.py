"""The session report: a self-contained HTML file (and PDF when Chromium is present) a clinician
can read in two minutes, built from the session's stored windows, events and (if kept) transcript."""
