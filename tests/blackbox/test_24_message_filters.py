"""Per-device message filters on MQTT: publish and subscribe accept/reject lists with wildcards,
what a refused PUBLISH, SUBSCRIBE and will look like, the `unauthorized topic` event, templates
({{device.id}}, {{device.name}}, {{hub.id}}, {{hub.name}}), and filter changes applied to live
connections. iothub only."""

import time

import pytest

import mqttraw as m
from iotapi import (  # noqa: F401  (fixtures)
    REFUSED, WAIT, EventListener, api, device_client, device_connect, insecure_device,
    iothub_only, msg_is, server, server_still_running, unique)

OPEN = {"policy": "reject", "topics": []}


def filters(publish=None, subscribe=None):
    return {"publish": publish or OPEN, "subscribe": subscribe or OPEN}


def accept(*topics):
    return {"policy": "accept", "topics": list(topics)}


def reject(*topics):
    return {"policy": "reject", "topics": list(topics)}


@pytest.fixture
def hub(api):
    return api.new_hub(name=unique("c24-hub"))


@pytest.fixture
def dedicated(api):
    return api.new_hub(name=unique("c24-dedicated"), productPlan="plan_dedicated")


def watcher(server, api, hub_id, version=4, topic="c24/#"):
    """An unrestricted device of the hub subscribed to `topic` (QoS 0)."""
    c = device_client(server, insecure_device(api, hub_id, name=unique("c24-watch"))["id"],
                      version)
    assert c.subscribe(topic, 0).return_codes == [0]
    return c


def listener(server, api, hub_id):
    return EventListener(server, insecure_device(api, hub_id, name=unique("c24-events"))["id"])


def publish_refused_ack(c, version, topic, qos=1):
    """Publish at QoS 1 to a refused topic: 3.1.1 still gets its PUBACK; v5 gets reason 0x87."""
    ack = c.publish_acked(topic, b"refused?", qos=qos)
    if version == 5:
        assert ack.reason == m.RC_NOT_AUTHORIZED, ack
    else:
        assert ack.type == (m.PUBACK if qos == 1 else m.PUBCOMP) and ack.reason == 0, ack
    return ack


# --- publish --------------------------------------------------------------------------------------

def test_publish_accept_list(server, api, hub, version):
    d = insecure_device(api, hub["id"], messageFilters=filters(
        publish=accept("c24/ok/+", "c24/all/#")))
    events = listener(server, api, hub["id"])
    watch = watcher(server, api, hub["id"], version)
    c = device_client(server, d["id"], version)
    allowed = ["c24/ok/a", "c24/all", "c24/all/x/y"]
    denied = ["c24/ok/a/b", "c24/other", "c24/ok", "c24/oka/x"]
    for topic in allowed:
        ack = c.publish_acked(topic, topic.encode(), qos=1)
        assert ack.reason == 0, (topic, ack)
    for topic in denied:
        publish_refused_ack(c, version, topic)
        c.publish(topic, b"qos0 too", qos=0)
    c.publish("c24/all/end", m.SENTINEL, qos=0)
    got = watch.collect_until("c24/all/end")
    assert [p.topic for p in got] == allowed, got
    topic, event = events.wait_event(msg_is("unauthorized topic c24/other", d["id"]))
    assert topic == "$SCW/events/error/device/" + d["id"], topic
    assert event["severity"] == "error" and event["object-type"] == "device", event
    for c_ in (c, watch):
        c_.disconnect()
    events.close()


def test_publish_reject_list(server, api, hub, version):
    d = insecure_device(api, hub["id"], messageFilters=filters(
        publish=reject("c24/secret/#", "c24/+/private")))
    watch = watcher(server, api, hub["id"], version)
    c = device_client(server, d["id"], version)
    for topic in ("c24/secret", "c24/secret/x", "c24/a/private"):
        publish_refused_ack(c, version, topic)
    allowed = ["c24/public", "c24/a/b/private", "c24/secrets"]
    for topic in allowed:
        assert c.publish_acked(topic, b"ok", qos=1).reason == 0
    c.publish("c24/end", m.SENTINEL)
    assert [p.topic for p in watch.collect_until("c24/end")] == allowed
    c.disconnect()
    watch.disconnect()


def test_refused_qos2_publish(server, api, dedicated, version):
    d = insecure_device(api, dedicated["id"], messageFilters=filters(publish=reject("c24/no")))
    watch = watcher(server, api, dedicated["id"], version)
    c = device_client(server, d["id"], version)
    if version == 5:
        rec = c.publish_acked("c24/no", b"x", qos=2)
        assert rec.type == m.PUBREC and rec.reason == m.RC_NOT_AUTHORIZED, rec
    else:
        publish_refused_ack(c, version, "c24/no", qos=2)
    c.publish_acked("c24/yes", b"fine", qos=2)
    c.publish("c24/end", m.SENTINEL)
    assert [p.topic for p in watch.collect_until("c24/end")] == ["c24/yes"]
    c.disconnect()
    watch.disconnect()


def test_own_subscription_does_not_bypass_publish_filter(server, api, hub, version):
    d = insecure_device(api, hub["id"], messageFilters=filters(publish=accept("c24/mine")))
    c = device_client(server, d["id"], version)
    c.subscribe("c24/#", 0)
    c.publish("c24/theirs", b"no")
    c.publish("c24/mine", m.SENTINEL)
    assert c.collect_until("c24/mine") == []
    c.disconnect()


# --- subscribe ------------------------------------------------------------------------------------

def subscribe_refused_code(version):
    return m.SUBACK_FAILURE_V311 if version == 4 else m.RC_NOT_AUTHORIZED


def test_subscribe_accept_list(server, api, hub, version):
    d = insecure_device(api, hub["id"], messageFilters=filters(
        subscribe=accept("c24/sub/ok/#", "c24/sub/one")))
    c = device_client(server, d["id"], version)
    no = subscribe_refused_code(version)
    for filt, code in (("c24/sub/ok/a", 0), ("c24/sub/ok/#", 0), ("c24/sub/ok/+/b", 0),
                       ("c24/sub/one", 0), ("c24/sub/#", no), ("c24/sub/+", no),
                       ("c24/other", no), ("#", no), ("c24/sub/two", no)):
        ack = c.subscribe(filt, 0)
        assert ack.return_codes == [code], (filt, ack)
    ack = c.subscribe([("c24/sub/one", 0), ("c24/elsewhere", 0)])
    assert ack.return_codes == [0, no], ack
    # A refused subscription receives nothing.
    pub = device_client(server, insecure_device(api, hub["id"])["id"], version)
    pub.publish("c24/elsewhere", b"not for you")
    pub.publish("c24/sub/two", b"not for you either")
    pub.publish("c24/sub/one", m.SENTINEL)
    assert c.collect_until("c24/sub/one") == []
    c.disconnect()
    pub.disconnect()


def test_subscribe_reject_list(server, api, hub, version):
    d = insecure_device(api, hub["id"], messageFilters=filters(
        subscribe=reject("c24/sub/secret/#")))
    c = device_client(server, d["id"], version)
    no = subscribe_refused_code(version)
    for filt, code in (("c24/sub/public", 0), ("c24/sub/secretive", 0),
                       ("c24/sub/secret", no), ("c24/sub/secret/x", no),
                       # Filters that could match a rejected topic are refused too.
                       ("c24/sub/#", no), ("c24/sub/+/x", no), ("#", no)):
        ack = c.subscribe(filt, 0)
        assert ack.return_codes == [code], (filt, ack)
    c.disconnect()


# --- will -----------------------------------------------------------------------------------------

def test_will_on_a_refused_topic_refuses_the_connection(server, api, hub, version):
    d = insecure_device(api, hub["id"], messageFilters=filters(publish=accept("c24/will/ok")))
    c, ack = device_connect(server, d["id"], version,
                            will={"topic": "c24/will/forbidden", "payload": b"bye"})
    assert ack.reason == REFUSED[version], ack
    c.expect_closed()
    watch = watcher(server, api, hub["id"], version, "c24/will/#")
    c = device_client(server, d["id"], version, will={"topic": "c24/will/ok", "payload": b"bye"})
    c.drop()
    watch.expect_publish("c24/will/ok", b"bye", timeout=WAIT)
    watch.disconnect()


# --- templates ------------------------------------------------------------------------------------

def test_templates_expand_per_device(server, api, hub, version):
    rules = filters(publish=accept("c24/d/{{device.id}}/#", "c24/n/{{ device.name }}",
                                   "c24/h/{{hub.id}}/+", "c24/hn/{{ hub.name }}"),
                    subscribe=accept("c24/d/{{device.id}}/#", "c24/all"))
    one = insecure_device(api, hub["id"], name=unique("c24-one"), messageFilters=rules)
    two = insecure_device(api, hub["id"], name=unique("c24-two"), messageFilters=rules)
    watch = watcher(server, api, hub["id"], version)
    c1 = device_client(server, one["id"], version)
    c2 = device_client(server, two["id"], version)
    mine = ["c24/d/%s/x" % one["id"], "c24/n/%s" % one["name"], "c24/h/%s/y" % hub["id"],
            "c24/hn/%s" % hub["name"]]
    for topic in mine:
        assert c1.publish_acked(topic, b"ok", qos=1).reason == 0
    theirs = ["c24/d/%s/x" % two["id"], "c24/n/%s" % two["name"],
              "c24/d/{{device.id}}/x", "c24/n/{{ device.name }}"]
    for topic in theirs:
        publish_refused_ack(c1, version, topic)
    c2.publish("c24/d/%s/end" % two["id"], m.SENTINEL)
    got = watch.collect_until("c24/d/%s/end" % two["id"])
    assert [p.topic for p in got] == mine, got
    no = subscribe_refused_code(version)
    assert c1.subscribe("c24/d/%s/#" % one["id"], 0).return_codes == [0]
    assert c1.subscribe("c24/d/%s/#" % two["id"], 0).return_codes == [no]
    for c in (c1, c2, watch):
        c.disconnect()


# --- live changes ---------------------------------------------------------------------------------

def until(check, timeout=WAIT):
    """Repeat a round of publishing until check() says the change shows; returns True then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
    return False


def test_filter_update_applies_to_live_connection(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    watch = watcher(server, api, hub["id"], version)
    c = device_client(server, d["id"], version)
    assert c.subscribe([("c24/live/#", 0), ("c24/keep/#", 0)]).return_codes == [0, 0]
    c.publish("c24/live/a", b"before")
    c.expect_publish("c24/live/a", b"before")
    watch.collect_until("c24/live/a", b"before")
    events = listener(server, api, hub["id"])
    api.call("updateDevice", deviceId=d["id"], messageFilters=filters(
        publish=accept("c24/keep/#"), subscribe=accept("c24/keep/#")))
    rounds = [0]

    def publish_blocked():
        rounds[0] += 1
        c.publish("c24/live/a", b"after %d" % rounds[0])
        c.publish("c24/keep/end", m.SENTINEL)
        got = watch.collect_until("c24/keep/end")
        # The device's own subscription to c24/keep/# delivers the sentinel too.
        c.collect_until("c24/keep/end")
        return not any(p.topic == "c24/live/a" for p in got)

    assert until(publish_blocked), "the new publish filter never applied"
    events.wait_event(msg_is("unauthorized topic c24/live/a", d["id"]))
    # Once applied it stays applied; and the subscription to c24/live/# no longer delivers.
    pub = device_client(server, insecure_device(api, hub["id"])["id"], version)
    pub.publish("c24/live/b", b"no longer yours")
    pub.publish("c24/keep/x", b"still yours")
    pub.publish("c24/keep/end", m.SENTINEL)
    got = c.collect_until("c24/keep/end")
    assert [(p.topic, p.payload) for p in got] == [("c24/keep/x", b"still yours")], got
    assert publish_blocked()
    # And relaxing the filters again lifts the block.
    api.call("updateDevice", deviceId=d["id"], messageFilters=filters())

    def publish_allowed():
        c.publish("c24/live/a", b"again")
        c.publish("c24/keep/end", m.SENTINEL)
        got = watch.collect_until("c24/keep/end")
        c.collect_until("c24/keep/end")
        return any(p.topic == "c24/live/a" for p in got)

    assert until(publish_allowed), "the relaxed publish filter never applied"
    for x in (c, watch, pub):
        x.disconnect()
    events.close()


def test_filter_update_drops_live_subscriptions(server, api, hub, version):
    d = insecure_device(api, hub["id"])
    c = device_client(server, d["id"], version)
    assert c.subscribe([("c24/gone/#", 0), ("c24/stay/#", 0)]).return_codes == [0, 0]
    pub = device_client(server, insecure_device(api, hub["id"])["id"], version)
    api.call("updateDevice", deviceId=d["id"], messageFilters=filters(
        subscribe=reject("c24/gone/#")))

    def dropped():
        pub.publish("c24/gone/x", b"dropped?")
        pub.publish("c24/stay/end", m.SENTINEL)
        return c.collect_until("c24/stay/end") == []

    assert until(dropped), "the subscription the new filter refuses kept receiving"
    no = subscribe_refused_code(version)
    assert c.subscribe("c24/gone/y", 0).return_codes == [no]
    pub.publish("c24/stay/x", b"kept")
    c.expect_publish("c24/stay/x", b"kept")
    c.disconnect()
    pub.disconnect()
