"""Shared subscriptions: $share/{group}/{filter}, each message to exactly one member."""

import mqttraw as m


def drain_group(members, expected, per_read=0.3):
    """Read from every member until `expected` messages arrived in all, then check for extras."""
    got = {i: [] for i in range(len(members))}
    total = 0
    import time
    deadline = time.monotonic() + 20
    while total < expected:
        assert time.monotonic() < deadline, "only %d of %d messages arrived" % (total, expected)
        for i, c in enumerate(members):
            try:
                pkt = c.read_packet(per_read)
            except TimeoutError:
                continue
            assert pkt.type == m.PUBLISH, pkt
            c.ack(pkt)
            got[i].append(pkt.payload)
            total += 1
    for c in members:
        c.expect_nothing(0.3)
    return got


def test_shared_each_message_to_one_member(broker, version):
    members = [broker.connected(version, "c06-member-%d" % i) for i in range(3)]
    for c in members:
        c.subscribe("$share/g1/c06/shared/+", 1)
    pub = broker.connected(version, "c06-pub")
    n = 30
    pub.publish_many("c06/shared/x", [b"%02d" % i for i in range(n)], qos=1)
    got = drain_group(members, n)
    everything = sorted(p for msgs in got.values() for p in msgs)
    assert everything == [b"%02d" % i for i in range(n)]


def test_shared_and_plain_subscription(broker, version):
    plain = broker.connected(version, "c06-plain")
    plain.subscribe("c06/mixed", 1)
    members = [broker.connected(version, "c06-mixed-%d" % i) for i in range(2)]
    for c in members:
        c.subscribe("$share/g/c06/mixed", 1)
    pub = broker.connected(version, "c06-mixed-pub")
    n = 10
    pub.publish_many("c06/mixed", [b"%d" % i for i in range(n)], qos=1)
    got = drain_group(members, n)
    assert sorted(p for msgs in got.values() for p in msgs) == sorted(b"%d" % i for i in range(n))
    assert [p.payload for p in plain.collect_publishes(n)] == [b"%d" % i for i in range(n)]


def test_two_groups_each_get_every_message(broker, version):
    a = [broker.connected(version, "c06-a-%d" % i) for i in range(2)]
    b = [broker.connected(version, "c06-b-%d" % i) for i in range(2)]
    for c in a:
        c.subscribe("$share/a/c06/groups/#", 1)
    for c in b:
        c.subscribe("$share/b/c06/groups/#", 1)
    pub = broker.connected(version, "c06-groups-pub")
    n = 10
    pub.publish_many("c06/groups/t", [b"%d" % i for i in range(n)], qos=1)
    for group in (a, b):
        got = drain_group(group, n)
        assert sorted(p for msgs in got.values() for p in msgs) == sorted(
            b"%d" % i for i in range(n))


def test_shared_member_leaves(broker, version):
    stay = broker.connected(version, "c06-stay")
    leave = broker.connected(version, "c06-leave")
    for c in (stay, leave):
        c.subscribe("$share/g/c06/leave", 1)
    leave.unsubscribe("$share/g/c06/leave")
    pub = broker.connected(version, "c06-leave-pub")
    n = 6
    pub.publish_many("c06/leave", [b"%d" % i for i in range(n)], qos=1)
    assert [p.payload for p in stay.collect_publishes(n)] == [b"%d" % i for i in range(n)]
    leave.expect_nothing(0.3)


def test_shared_member_disconnects(broker, version):
    stay = broker.connected(version, "c06-stay2")
    gone = broker.connected(version, "c06-gone")
    for c in (stay, gone):
        c.subscribe("$share/g/c06/gone", 1)
    gone.disconnect()
    stay.ping()
    pub = broker.connected(version, "c06-gone-pub")
    n = 6
    pub.publish_many("c06/gone", [b"%d" % i for i in range(n)], qos=1)
    assert sorted(p.payload for p in stay.collect_publishes(n)) == sorted(
        b"%d" % i for i in range(n))


def test_shared_suback_granted(broker, version):
    c = broker.connected(version, "c06-suback")
    ack = c.subscribe([("$share/g/c06/q0", 0), ("$share/g/c06/q2", 2)])
    assert ack.return_codes == [0, 2]


def test_v5_shared_subscription_available(broker):
    c = broker.connected(5, "c06-avail")
    # Absent means available (MQTT 5 section 3.2.2.3.15).
    assert c.connack.props.get(m.SHARED_SUBSCRIPTION_AVAILABLE, 1) == 1


def test_v5_no_retained_on_shared_subscribe(broker):
    """MQTT 5 section 3.8.4: retained messages are not sent for a shared subscription."""
    pub = broker.connected(5, "c06-ret-pub")
    pub.publish_acked("c06/ret", b"retained", qos=1, retain=True)
    c = broker.connected(5, "c06-ret-sub")
    c.subscribe("$share/g/c06/ret", 1)
    pub.publish_acked("c06/ret", m.SENTINEL, qos=1)
    got = c.collect_until("c06/ret")
    if broker.is_mosquitto:
        # mosquitto 2.0.11 sends the retained message to a new shared subscriber (observed);
        # the specification says not to (MQTT 5 section 4.8.2), iothub must not.
        assert [p.payload for p in got] in ([], [b"retained"])
    else:
        assert got == []


def test_v5_shared_no_local_is_protocol_error(broker):
    """[MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol Error."""
    from brokers import expect_error_close, assert_alive
    c = broker.connected(5, "c06-nolocal")
    c.send_raw(m.subscribe_packet(5, 1, [("$share/g/c06/nl", m.sub_options(1, no_local=True))]))
    if broker.is_mosquitto:
        # mosquitto 2.0.11 grants it (observed); recorded, enforced for iothub only.
        assert c.expect_packet(m.SUBACK).return_codes == [1]
    else:
        expect_error_close(broker, c, m.RC_PROTOCOL_ERROR)
    assert_alive(broker, 5)
