"""Keep alive: enforced at one and a half times the interval, PINGREQ/PINGRESP, server keep alive."""

import time

import mqttraw as m
from brokers import expect_error_close


def test_pingresp_bytes(broker, version):
    c = broker.connected(version, "c08-ping")
    c.send_raw(b"\xc0\x00")
    pkt = c.expect_packet(m.PINGRESP)
    assert pkt.raw == b"\xd0\x00"


def test_keepalive_timeout_closes(broker, version):
    c = broker.connected(version, "c08-timeout", keepalive=1)
    got = c.expect_closed(timeout=15)
    disc = [p for p in got if p.type == m.DISCONNECT]
    if version == 5 and disc:
        assert disc[0].reason == m.RC_KEEP_ALIVE_TIMEOUT
    assert not [p for p in got if p.type != m.DISCONNECT], got


def test_pingreq_keeps_connection(broker, version):
    c = broker.connected(version, "c08-alive", keepalive=1)
    end = time.monotonic() + 3.5
    while time.monotonic() < end:
        c.ping()
        time.sleep(0.4)
    c.ping()


def test_publish_keeps_connection(broker, version):
    c = broker.connected(version, "c08-pubalive", keepalive=1)
    c.subscribe("c08/alive", 0)
    end = time.monotonic() + 3.5
    i = 0
    while time.monotonic() < end:
        c.publish("c08/alive", b"%d" % i)
        c.expect_publish("c08/alive", b"%d" % i)
        i += 1
        time.sleep(0.4)
    c.ping()


def test_keepalive_zero_never_times_out(broker, version):
    c = broker.connected(version, "c08-zero", keepalive=0)
    time.sleep(3)
    c.ping()


def test_v5_server_keep_alive(broker_factory):
    broker = broker_factory(max_keep_alive=10)
    c = broker.connected(5, "c08-server-ka", keepalive=60)
    assert c.connack.props.get(m.SERVER_KEEP_ALIVE) == 10
    c = broker.connected(5, "c08-server-ka0", keepalive=0)
    assert c.connack.props.get(m.SERVER_KEEP_ALIVE) == 10
    c = broker.connected(5, "c08-server-ka5", keepalive=5)
    assert c.connack.props.get(m.SERVER_KEEP_ALIVE, 5) == 5


def test_v5_server_keep_alive_enforced(broker_factory, broker_kind):
    if broker_kind == "mosquitto":
        import pytest
        pytest.skip("mosquitto refuses max_keepalive below 10 s; a 15 s wait is too slow here")
    broker = broker_factory(max_keep_alive=1)
    c = broker.connected(5, "c08-server-ka-enforced", keepalive=60)
    assert c.connack.props.get(m.SERVER_KEEP_ALIVE) == 1
    got = c.expect_closed(timeout=15)
    assert all(p.type == m.DISCONNECT and p.reason == m.RC_KEEP_ALIVE_TIMEOUT for p in got), got
