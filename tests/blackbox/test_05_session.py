"""Sessions: clean session / clean start, Session Present, offline queueing, session expiry."""

import time

import mqttraw as m


def persistent_props(version, expiry=300):
    return {m.SESSION_EXPIRY_INTERVAL: expiry} if version == 5 else None


def test_clean_session_not_present(broker, version):
    c = broker.connected(version, "c05-clean")
    assert c.connack.session_present is False
    c.disconnect()
    c = broker.connected(version, "c05-clean")
    assert c.connack.session_present is False


def test_persistent_session_present_and_kept(broker, version):
    props = persistent_props(version)
    c = broker.connected(version, "c05-persist", clean=False, props=props)
    assert c.connack.session_present is False
    c.subscribe("c05/persist", 1)
    c.disconnect()
    c = broker.connected(version, "c05-persist", clean=False, props=props)
    assert c.connack.session_present is True
    if version == 4:
        assert c.connack.raw == b"\x20\x02\x01\x00"
    pub = broker.connected(version, "c05-persist-pub")
    pub.publish_acked("c05/persist", b"still subscribed", qos=1)
    c.ack(c.expect_publish("c05/persist", b"still subscribed", qos=1))


def test_clean_connect_discards_session(broker, version):
    props = persistent_props(version)
    c = broker.connected(version, "c05-discard", clean=False, props=props)
    c.subscribe("c05/discard", 1)
    c.disconnect()
    c = broker.connected(version, "c05-discard", clean=True, props=props)
    assert c.connack.session_present is False
    c.subscribe("c05/discard-sentinel", 1)
    pub = broker.connected(version, "c05-discard-pub")
    pub.publish_acked("c05/discard", b"old subscription", qos=1)
    pub.publish_acked("c05/discard-sentinel", m.SENTINEL, qos=1)
    assert c.collect_until("c05/discard-sentinel") == []
    c.disconnect()
    # The session created by the clean connect is not the old one either.
    c = broker.connected(version, "c05-discard", clean=False, props=props)
    if version == 4:
        # 3.1.1: a clean session ends when the connection does [MQTT-3.1.2-6].
        assert c.connack.session_present is False
    else:
        # v5: clean start only discards the old session; the new one has the expiry we asked.
        assert c.connack.session_present is True


def test_offline_messages_queued(broker, version):
    props = persistent_props(version)
    c = broker.connected(version, "c05-queue", clean=False, props=props)
    c.subscribe("c05/queue/#", 2)
    c.disconnect()
    pub = broker.connected(version, "c05-queue-pub")
    for i in range(6):
        pub.publish_acked("c05/queue/%d" % i, b"msg %d" % i, qos=(1, 2)[i % 2])
    c = broker.connected(version, "c05-queue", clean=False, props=props)
    assert c.connack.session_present
    got = c.collect_publishes(6)
    assert [(p.topic, p.payload, p.qos) for p in got] == [
        ("c05/queue/%d" % i, b"msg %d" % i, (1, 2)[i % 2]) for i in range(6)]
    pub.publish_acked("c05/queue/end", m.SENTINEL, qos=1)
    assert c.collect_until("c05/queue/end") == []


def test_offline_qos0_not_required(broker, version):
    """Queueing QoS 0 for offline clients is optional; QoS 1 after it must still arrive."""
    props = persistent_props(version)
    c = broker.connected(version, "c05-q0", clean=False, props=props)
    c.subscribe("c05/q0", 1)
    c.disconnect()
    pub = broker.connected(version, "c05-q0-pub")
    pub.publish("c05/q0", b"qos0")
    pub.publish_acked("c05/q0", b"qos1", qos=1)
    c = broker.connected(version, "c05-q0", clean=False, props=props)
    got = c.collect_publishes(1)
    if got[0].payload == b"qos0":
        got = c.collect_publishes(1)
    assert got[0].payload == b"qos1"


def test_takeover_keeps_session(broker, version):
    props = persistent_props(version)
    old = broker.connected(version, "c05-takeover", clean=False, props=props)
    old.subscribe("c05/takeover", 1)
    new = broker.connected(version, "c05-takeover", clean=False, props=props)
    assert new.connack.session_present is True
    old.expect_closed()
    pub = broker.connected(version, "c05-takeover-pub")
    pub.publish_acked("c05/takeover", b"to the new connection", qos=1)
    new.ack(new.expect_publish("c05/takeover", b"to the new connection"))


def test_v5_session_expiry_zero_ends_at_disconnect(broker):
    c = broker.connected(5, "c05-exp0", clean=False)  # no Session Expiry Interval: 0
    c.subscribe("c05/exp0", 1)
    c.disconnect()
    c = broker.connected(5, "c05-exp0", clean=False)
    assert c.connack.session_present is False


def test_v5_session_expires(broker):
    c = broker.connected(5, "c05-expire", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 1})
    c.subscribe("c05/expire", 1)
    c.disconnect()
    # Expiry is checked at the broker's own granularity; each probe that finds the session
    # still there resumes it, so wait longer before each new probe.
    for wait in (2.5, 4, 6):
        time.sleep(wait)
        c = broker.connected(5, "c05-expire", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 1})
        if not c.connack.session_present:
            return
        c.disconnect()
    raise AssertionError("the session never expired")


def test_v5_session_expiry_set_by_disconnect(broker):
    """DISCONNECT may change a non-zero Session Expiry Interval; 0 ends the session now."""
    c = broker.connected(5, "c05-dexp", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 300})
    c.subscribe("c05/dexp", 1)
    c.disconnect(reason=0, props={m.SESSION_EXPIRY_INTERVAL: 0})
    c = broker.connected(5, "c05-dexp", clean=False, props={m.SESSION_EXPIRY_INTERVAL: 300})
    assert c.connack.session_present is False


def test_v5_disconnect_expiry_from_zero_is_protocol_error(broker):
    """[MQTT-3.14.2-2]: non-zero expiry in DISCONNECT after zero in CONNECT is a Protocol Error."""
    from brokers import expect_error_close
    c = broker.connected(5, "c05-dexp-bad", clean=True)
    c.send_raw(m.disconnect_packet(5, 0, {m.SESSION_EXPIRY_INTERVAL: 300}))
    expect_error_close(broker, c, m.RC_PROTOCOL_ERROR)
    c = broker.connected(5, "c05-dexp-bad", clean=False)
    assert c.connack.session_present is False


def test_v5_clean_start_with_expiry_discards(broker):
    props = {m.SESSION_EXPIRY_INTERVAL: 300}
    c = broker.connected(5, "c05-cs", clean=False, props=props)
    c.subscribe("c05/cs", 1)
    c.disconnect()
    c = broker.connected(5, "c05-cs", clean=True, props=props)
    assert c.connack.session_present is False


def test_v311_persistent_session_across_many_reconnects(broker):
    for i in range(5):
        c = broker.connected(4, "c05-many", clean=False)
        assert c.connack.session_present is (i > 0)
        if i == 0:
            c.subscribe("c05/many", 1)
        c.disconnect()
    pub = broker.connected(4, "c05-many-pub")
    pub.publish_acked("c05/many", b"x", qos=1)
    c = broker.connected(4, "c05-many", clean=False)
    c.ack(c.expect_publish("c05/many", b"x"))


def test_queued_messages_not_marked_retained(broker, version):
    """Messages queued for an offline session matched an established subscription: RETAIN 0."""
    props = persistent_props(version)
    c = broker.connected(version, "c05-qret", clean=False, props=props)
    c.subscribe("c05/qret", 1)
    c.disconnect()
    pub = broker.connected(version, "c05-qret-pub")
    pub.publish_acked("c05/qret", b"queued", qos=1, retain=True)
    c = broker.connected(version, "c05-qret", clean=False, props=props)
    pkt = c.expect_publish("c05/qret", b"queued", qos=1)
    assert not pkt.retain
    c.ack(pkt)
