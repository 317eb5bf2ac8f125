"""The hub's own Prometheus metrics (names start ``clinic_hub_``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LAG_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class HubMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.summaries = Counter(
            "clinic_hub_summaries", "Summaries received, by result (stored, duplicate, invalid)", ["result"], registry=r
        )
        self.sequenced = Counter(
            "clinic_hub_sequenced",
            "Disparity events (followed in the sequence, not kept) and retractions stored, by kind",
            ["kind"],
            registry=r,
        )
        self.statuses = Counter("clinic_hub_statuses", "Status messages received, by result", ["result"], registry=r)
        self.dead_letters = Counter(
            "clinic_hub_dead_letters",
            "Messages refused and set aside (acknowledged, never stored), by kind of reason",
            ["reason"],
            registry=r,
        )
        self.missing = Counter("clinic_hub_missing_summaries", "Summaries never received (sequence gaps)", registry=r)
        self.late = Counter("clinic_hub_late_summaries", "Summaries that arrived after a later one", registry=r)
        self.store_failures = Counter(
            "clinic_hub_store_failures", "Messages not stored because the database failed (redelivered)", registry=r
        )
        self.ingest_seconds = Histogram(
            "clinic_hub_ingest_seconds",
            "Time to validate and store one batch of messages",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.batch_size = Histogram(
            "clinic_hub_batch_messages",
            "Messages per stored batch",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
            registry=r,
        )
        self.summary_lag = Histogram(
            "clinic_hub_summary_lag_seconds",
            "From the end of a summary's span (when the room published it) to its commit in the hub",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.queue_waits = Counter(
            "clinic_hub_queue_waits", "Seconds the network thread waited for room in the ingest queue", registry=r
        )
        self.connected = Gauge("clinic_hub_mqtt_connected", "1 while connected to the broker", registry=r)
        self.rooms_online = Gauge("clinic_hub_rooms_online", "Appliances whose retained status is online", registry=r)
        self.logins = Counter("clinic_hub_logins", "Dashboard log-in attempts, by result", ["result"], registry=r)
        self.suppressed = Gauge(
            "clinic_hub_cells_held_back",
            "Cells of the newest releases held back so that nothing under k can be derived",
            registry=r,
        )
