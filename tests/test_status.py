"""The retained status: published when something a reader needs changed, not for every summary
that passes through the outbox (a run once sent 37 statuses for 22 summaries)."""

from __future__ import annotations

from clinic_common.mqtt import MqttConfig
from edge.config.models import RoomConfig
from edge.publish.mqtt import MqttClient
from tests.conftest import Broker, collect


def test_summaries_passing_through_publish_no_status_but_a_backlog_does(broker: Broker) -> None:
    statuses = collect(broker.host, broker.port, "clinic/v1/s/r/status")
    client = MqttClient(
        MqttConfig(host=broker.host, port=broker.port, max_inflight=20), RoomConfig(site="s", room="r", device_id="d")
    )
    try:
        client.connect(required=True)
        assert statuses.wait_for("status", 1)[0]["state"] == "online"  # the connection's own status
        client.set_outbox(0)  # the publisher's first report
        for _ in range(50):  # summaries published and acknowledged one by one
            client.set_outbox(1)
            client.set_outbox(0)
        client.set_outbox(25)  # the broker stopped acknowledging: a backlog beyond the in-flight window
        for pending in range(26, 40):
            client.set_outbox(pending)  # growing: reported again within the minute only by other changes
        client.set_outbox(0)  # the backlog cleared
        client.set_session("recording")  # a marker: every status before it has arrived once it has
        got = statuses.wait_for("status", 5)
        assert [s["session"] for s in got][-1] == "recording"  # the marker is the fifth: nothing else came
        assert [s.get("outbox") for s in got] == [None, 0, 25, 0, 0]
    finally:
        client.stop()
        statuses.close()
