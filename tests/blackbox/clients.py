"""Independent clients for the black-box tests: paho-mqtt and the mosquitto command-line tools."""

import queue
import subprocess
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import brokers

WAIT = 10.0


class Paho:
    """A paho-mqtt client driven synchronously: each call waits for its acknowledgement."""

    def __init__(self, broker, version=4, client_id="", clean=True, keepalive=60,
                 session_expiry=None, will=None):
        self.version = version
        protocol = {3: paho.MQTTv31, 4: paho.MQTTv311, 5: paho.MQTTv5}[version]
        if version == 5:
            self.client = paho.Client(client_id=client_id, protocol=protocol)
        else:
            self.client = paho.Client(client_id=client_id, clean_session=clean, protocol=protocol)
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self.subacks = queue.Queue()
        self.lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = lambda c, u, mid, granted, *rest: self.subacks.put((mid, granted))
        if will is not None:
            self.client.will_set(will["topic"], will.get("payload"), will.get("qos", 0),
                                 will.get("retain", False))
        props = None
        if version == 5:
            props = Properties(PacketTypes.CONNECT)
            if session_expiry is not None:
                props.SessionExpiryInterval = session_expiry
            self.client.connect(broker.host, broker.port, keepalive, clean_start=clean,
                                properties=props)
        else:
            self.client.connect(broker.host, broker.port, keepalive)
        self.client.loop_start()
        flags, rc, self.connack_props = self.connack.get(timeout=WAIT)
        self.session_present = bool(flags.get("session present"))
        assert rc == 0, "paho connect refused: %s" % rc

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connack.put((flags, rc, properties))

    def subscribe(self, topic, qos=0):
        if self.version == 5:
            result, mid = self.client.subscribe(topic, options=paho.SubscribeOptions(qos=qos))
        else:
            result, mid = self.client.subscribe(topic, qos)
        assert result == paho.MQTT_ERR_SUCCESS
        got_mid, granted = self.subacks.get(timeout=WAIT)
        assert got_mid == mid
        codes = [int(getattr(g, "value", g)) if not hasattr(g, "QoS") else g.QoS for g in granted]
        return codes

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.client.publish(topic, payload, qos, retain, properties=properties)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published(), "paho publish was not acknowledged"

    def get(self, timeout=WAIT):
        return self.messages.get(timeout=timeout)

    def disconnect(self):
        self.client.disconnect()
        self.client.loop_stop()

    def stop_without_disconnect(self):
        self.client.loop_stop()
        self.client.socket().close()


class Subscriber:
    """mosquitto_sub in the background; started() returns once it holds its subscription."""

    def __init__(self, broker, version, topic, count=1, qos=0, extra=()):
        args = ["stdbuf", "-oL", brokers.MOSQUITTO_SUB] + broker.mosquitto_sub_args(version) + [
            "-t", topic, "-q", str(qos), "-C", str(count), "-W", "10", "-d"] + list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines = []
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if "received SUBACK" in line:
                return
        raise AssertionError("mosquitto_sub never got its SUBACK: %r" % self.lines)

    def output(self):
        out, _ = self.proc.communicate(timeout=WAIT + 5)
        self.lines += out.splitlines()
        return self.proc.returncode, self.lines


def mosquitto_pub(broker, version, topic, message, qos=0, retain=False, extra=()):
    args = [brokers.MOSQUITTO_PUB] + broker.mosquitto_sub_args(version) + [
        "-t", topic, "-m", message, "-q", str(qos)] + (["-r"] if retain else []) + list(extra)
    res = subprocess.run(args, capture_output=True, text=True, timeout=WAIT)
    assert res.returncode == 0, "mosquitto_pub failed: %s %s" % (res.stdout, res.stderr)


def mosquitto_sub_once(broker, version, topic, extra=()):
    """Run mosquitto_sub -C 1 -W 5 and return its output lines (payloads)."""
    args = [brokers.MOSQUITTO_SUB] + broker.mosquitto_sub_args(version) + [
        "-t", topic, "-C", "1", "-W", "5"] + list(extra)
    res = subprocess.run(args, capture_output=True, text=True, timeout=WAIT + 5)
    return res.returncode, res.stdout.splitlines()
