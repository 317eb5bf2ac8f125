"""The clinic hub: aggregates the rooms' MQTT summaries for administrators, private by construction.

``ingest`` subscribes to every room's summaries and status, de-duplicates and notices gaps;
``store`` keeps per-session-day aggregates (no window, no frame, no word) in SQLite or PostgreSQL;
``views`` are the only thing the dashboard reads: aggregate views that suppress small cells;
``web`` is the administrators' dashboard.
"""
