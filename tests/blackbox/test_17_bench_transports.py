"""MQTT over TLS and WebSocket under load: the project's load generator (iothub-bench, with a TLS
client on OpenSSL and WebSocket framing of its own) drives iothub's mqtts, ws and wss listeners
with pipelined QoS 1 traffic, many packets per TLS record and per WebSocket frame, and checks
every stream for lost, duplicated and reordered messages; its handshake scenario opens and closes
full TLS connections. Behaviour only: rates must be nonzero, never above a threshold.

iothub only: the reference broker's TLS and WebSocket listeners are not configured by
brokers.py (bench/compare runs the same generator against mosquitto's)."""

import json
import subprocess

import pytest

from test_16_load import bench_binary

READY_KEYS = {"tls": "mqtts", "ws": "ws", "wss": "wss"}


@pytest.fixture(autouse=True)
def iothub_only(broker_kind):
    if broker_kind != "iothub":
        pytest.skip("iothub's mqtts, ws and wss listeners")


def listener_port(broker, transport):
    info = json.loads((broker.workdir / "ready.json").read_text())
    address = info.get(READY_KEYS[transport])
    assert address and address != "off", \
        "iothub's ready file names no %s listener: %s" % (READY_KEYS[transport], info)
    return int(address.rsplit(":", 1)[1])


def run_bench(broker, transport, *args):
    cmd = [str(bench_binary()), "--host", "127.0.0.1", "--port", str(listener_port(broker, transport)),
           "--transport", transport, "--duration", "1", "--warmup", "0", "--json", *args]
    if transport in ("tls", "wss"):
        # The server is verified: its chain must end at iothub's server CA and name 127.0.0.1.
        cmd += ["--cafile", str(broker.data_dir / "server-ca.pem")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip(), done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0, result["error_messages"]
    assert done.returncode == 0, (result, done.stderr)
    assert result["transport"] == transport
    if transport in ("tls", "wss"):
        assert result["tls_version"] in ("TLSv1.2", "TLSv1.3"), result
    return result


CASES = [
    ("pairs-qos1", ["--scenario", "pairs", "--clients", "4", "--qos", "1"]),
    # Deliveries larger than a TLS record (16 KiB) and than a 16-bit WebSocket frame length.
    ("pairs-qos1-100k", ["--scenario", "pairs", "--clients", "1", "--qos", "1", "--payload", "100000",
                         "--window", "8"]),
    ("fanout-qos1-v5", ["--scenario", "fanout", "--clients", "10", "--qos", "1", "--mqtt-version", "5",
                        "--window", "100"]),
]


@pytest.mark.parametrize("transport", ["tls", "ws", "wss"])
@pytest.mark.parametrize("name,args", CASES, ids=[c[0] for c in CASES])
def test_no_message_is_lost_over_the_transport(broker, transport, name, args):
    result = run_bench(broker, transport, *args)
    assert result["received"] > 0, result
    integrity = result["integrity"]
    assert integrity["ok"], integrity
    assert integrity["lost"] == 0 and integrity["duplicated"] == 0, integrity
    assert integrity["reordered"] == 0, integrity


@pytest.mark.parametrize("transport", ["tls", "wss"])
def test_full_handshakes_complete(broker, transport):
    result = run_bench(broker, transport, "--scenario", "handshake", "--clients", "4")
    assert result["handshakes"] > 0, result
    assert result["handshakes_per_s"] > 0, result
