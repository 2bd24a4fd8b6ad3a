"""Hub events: the hub publishes JSON log entries on itself under
`<events_topic_prefix>/<severity>/<object-type>/<object-id>`. Their payload, who receives them
(a device of the same hub subscribed to `$SCW/events/#`; `#` alone does not match), presence
events and their switch, disable_events, a changed prefix, and the rate limit. iothub only."""

import json
from datetime import datetime

import pytest

import mqttraw as m
from iotapi import (  # noqa: F401  (fixtures)
    WAIT, EventListener, api, device_client, insecure_device, iothub_only, msg_is, poll, server,
    server_still_running, unique)

RESTRICTED = {"publish": {"policy": "accept", "topics": ["c25/ok/#"]},
              "subscribe": {"policy": "reject", "topics": []}}


@pytest.fixture
def hub(api):
    return api.new_hub(name=unique("c25-hub"))


def restricted_device(api, hub_id):
    return insecure_device(api, hub_id, name=unique("c25-restricted"), messageFilters=RESTRICTED)


def listen(server, api, hub_id, **kw):
    return EventListener(server, insecure_device(api, hub_id, name=unique("c25-listener"))["id"],
                         **kw)


def violate(client, topic="c25/forbidden"):
    """Publish where the device may not; then a sentinel on an allowed topic that the listener
    follows, after the event on the same connection."""
    client.publish(topic, b"nope")


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_event_topic_and_payload(server, api, hub):
    d = restricted_device(api, hub["id"])
    events = listen(server, api, hub["id"])
    c = device_client(server, d["id"])
    violate(c, "c25/forbidden/x")
    topic, event = events.wait_event(msg_is("unauthorized topic c25/forbidden/x"))
    assert topic == "$SCW/events/error/device/" + d["id"], topic
    for key in ("time", "severity", "object-type", "object-id", "msg"):
        assert key in event, "%s missing from %r" % (key, event)
    assert event["severity"] == "error"
    assert event["object-type"] == "device"
    assert event["object-id"] == d["id"]
    stamp = parse_time(event["time"])
    assert stamp.tzinfo is not None and stamp.year >= 2024, event
    pkt = events.seen[-1]
    assert not pkt.retain, pkt
    json.loads(pkt.payload)  # the payload is JSON on its own
    c.disconnect()
    events.close()


def test_hash_alone_does_not_match_events(server, api, hub):
    d = restricted_device(api, hub["id"])
    everything = device_client(server, insecure_device(api, hub["id"])["id"])
    everything.subscribe("#", 0)
    events = listen(server, api, hub["id"], extra=("c25/ok/#",))
    c = device_client(server, d["id"])
    violate(c)
    c.publish("c25/ok/end", m.SENTINEL)
    events.wait_event(msg_is("unauthorized topic c25/forbidden", d["id"]))
    got = everything.collect_until("c25/ok/end")
    assert not [p for p in got if p.topic.startswith("$")], got
    for x in (c, everything):
        x.disconnect()
    events.close()


def test_events_stay_in_their_hub(server, api, hub):
    other = api.new_hub(name=unique("c25-other"))
    d = restricted_device(api, hub["id"])
    here = listen(server, api, hub["id"])
    there = listen(server, api, other["id"], extra=("c25/ok/#",))
    c = device_client(server, d["id"])
    violate(c)
    here.wait_event(msg_is("unauthorized topic c25/forbidden", d["id"]))
    # A sentinel published in the other hub after the event was seen here.
    o = device_client(server, insecure_device(api, other["id"])["id"])
    o.publish("c25/ok/end", m.SENTINEL)
    assert [e for e in there.events_until("c25/ok/end") if e[1].get("object-id") == d["id"]] == []
    for x in (c, o):
        x.disconnect()
    here.close()
    there.close()


def test_presence_events(server, api, hub):
    d = insecure_device(api, hub["id"])
    events = listen(server, api, hub["id"])
    c = device_client(server, d["id"])
    topic, event = events.wait_event(msg_is("device connected", d["id"]))
    assert topic == "$SCW/events/info/device/" + d["id"], topic
    assert event["severity"] == "info" and event["object-type"] == "device", event
    c.disconnect()
    topic, event = events.wait_event(msg_is("device disconnected", d["id"]))
    assert topic == "$SCW/events/info/device/" + d["id"], topic
    assert isinstance(event.get("reason"), str) and event["reason"], event
    # An abrupt end is reported too.
    c = device_client(server, d["id"])
    events.wait_event(msg_is("device connected", d["id"]))
    c.drop()
    _, event = events.wait_event(msg_is("device disconnected", d["id"]))
    assert event.get("reason"), event
    events.close()


def test_presence_events_can_be_turned_off(server, api, hub):
    r = api.http("PATCH", "hubs/" + hub["id"], {"presence_events": False})
    assert r.status == 200 and r.json["presence_events"] is False, r
    d = restricted_device(api, hub["id"])
    events = listen(server, api, hub["id"])
    c = device_client(server, d["id"])
    c.publish("c25/ok/x", b"fine")
    c.disconnect()
    poll(lambda: not api.call("getDevice", deviceId=d["id"])["isConnected"],
         what="the device to be disconnected")
    # Then an error event: the first event the listener gets must be it.
    c = device_client(server, d["id"])
    violate(c)
    topic, event = events.wait_event()
    assert event["msg"] == "unauthorized topic c25/forbidden", (topic, event)
    c.disconnect()
    events.close()


def test_disable_events(server, api, hub):
    api.call("updateHub", hubId=hub["id"], disableEvents=True)
    d = restricted_device(api, hub["id"])
    events = listen(server, api, hub["id"], extra=("c25/ok/#",))
    c = device_client(server, d["id"])
    for _ in range(3):
        violate(c)
    c.publish("c25/ok/end", m.SENTINEL)
    c.disconnect()
    assert events.events_until("c25/ok/end") == []
    # Nothing either for a refused connection or a disconnection.
    secure = api.new_device(hub["id"])
    s = server.raw(4)
    assert s.connect(secure["id"]).reason == 0x05
    s.expect_closed()
    events.client.expect_nothing(timeout=1.0)
    # Turned back on, events flow again.
    api.call("updateHub", hubId=hub["id"], disableEvents=False)
    c = device_client(server, d["id"])
    violate(c)
    events.wait_event(msg_is("unauthorized topic c25/forbidden", d["id"]))
    c.disconnect()
    events.close()


def test_events_topic_prefix(server, api, hub):
    api.call("updateHub", hubId=hub["id"], eventsTopicPrefix="c25/custom/events")
    d = restricted_device(api, hub["id"])
    old = listen(server, api, hub["id"], extra=("c25/ok/#",))
    new = listen(server, api, hub["id"], prefix="c25/custom/events")
    c = device_client(server, d["id"])
    violate(c)
    topic, event = new.wait_event(msg_is("unauthorized topic c25/forbidden", d["id"]))
    assert topic == "c25/custom/events/error/device/" + d["id"], topic
    c.publish("c25/ok/end", m.SENTINEL)
    assert [e for e in old.events_until("c25/ok/end")
            if e[1].get("msg", "").startswith("unauthorized")] == []
    c.disconnect()
    old.close()
    new.close()


def test_prefix_at_creation(server, api):
    hub = api.new_hub(name=unique("c25-prefix"), eventsTopicPrefix="c25/born/events")
    d = restricted_device(api, hub["id"])
    events = listen(server, api, hub["id"], prefix="c25/born/events")
    c = device_client(server, d["id"])
    violate(c)
    topic, _ = events.wait_event(msg_is("unauthorized topic c25/forbidden", d["id"]))
    assert topic == "c25/born/events/error/device/" + d["id"]
    c.disconnect()
    events.close()


def test_event_rate_limit(server, api, hub):
    d = restricted_device(api, hub["id"])
    events = listen(server, api, hub["id"], extra=("c25/ok/#",))
    c = device_client(server, d["id"])
    for i in range(200):
        c.publish("c25/forbidden/%d" % i, b"flood")
    c.publish("c25/ok/end", m.SENTINEL)
    got = events.events_until("c25/ok/end", timeout=30)
    # Events may trail the sentinel a little; count what arrives in a short window after it.
    try:
        while True:
            pkt = events.client.read_packet(timeout=1.0)
            if pkt.topic and pkt.topic.startswith("$SCW/events/"):
                got.append((pkt.topic, json.loads(pkt.payload)))
    except (TimeoutError, ConnectionError):
        pass
    unauthorized = [e for _, e in got if e.get("msg", "").startswith("unauthorized topic")]
    assert 1 <= len(unauthorized) < 100, len(unauthorized)
    # Still responsive: the flooding device, the listener and the API.
    c.ping()
    events.client.ping()
    assert api.call("getDevice", deviceId=d["id"])["isConnected"] is True
    c.disconnect()
    events.close()


def test_events_through_mosquitto_sub(server, api, hub):
    from clients import Subscriber

    api.http("PATCH", "hubs/" + hub["id"], {"presence_events": False})
    watcher = insecure_device(api, hub["id"])
    sub = Subscriber(server, 4, "$SCW/events/#", count=1, extra=["-i", watcher["id"], "-v"])
    d = restricted_device(api, hub["id"])
    c = device_client(server, d["id"])
    violate(c, "c25/forbidden/tools")
    rc, lines = sub.output()
    assert rc == 0, lines
    line = [x for x in lines if x.startswith("$SCW/events/")]
    assert line, lines
    topic, payload = line[0].split(" ", 1)
    assert topic == "$SCW/events/error/device/" + d["id"], line
    assert json.loads(payload)["msg"] == "unauthorized topic c25/forbidden/tools", payload
    c.disconnect()
