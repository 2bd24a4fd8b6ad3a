"""Under load, nothing acknowledged is lost: the project's load generator (iothub-bench, a client
of its own written on raw sockets) drives the broker with pipelined QoS 1 and QoS 2 traffic and
checks every stream for lost, duplicated and reordered messages. Behaviour only: the rates it
prints are not asserted."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from brokers import REPO_ROOT


def bench_binary():
    path = Path(os.environ.get("IOTHUB_BENCH_BIN", "build-release/bench/loadgen/iothub-bench"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.exists():
        pytest.fail("iothub-bench not found at %s (set IOTHUB_BENCH_BIN)" % path)
    return path


def run_bench(broker, *args):
    cmd = [str(bench_binary()), "--host", "127.0.0.1", "--port", str(broker.port),
           "--duration", "1", "--warmup", "0", "--json", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0, result["error_messages"]
    return result


# mosquitto 2.0.11 acknowledges but drops QoS 2 messages a 3.1.1 publisher pipelines past its
# in-flight window of 20 (observed with this generator and with a plain raw-socket client), and
# in the fan-in case it reported 380 of 400 pipelined QoS 1 messages lost; those two cases run
# against iothub only, the others hold both brokers to the same result.
CASES = [
    ("pairs-qos1-v311", ["--scenario", "pairs", "--clients", "4", "--qos", "1"], False),
    ("pairs-qos2-v311", ["--scenario", "pairs", "--clients", "4", "--qos", "2"], True),
    ("pairs-qos2-v5", ["--scenario", "pairs", "--clients", "4", "--qos", "2",
                       "--mqtt-version", "5"], False),
    ("fanout-qos1-v5", ["--scenario", "fanout", "--clients", "20", "--qos", "1",
                        "--mqtt-version", "5"], False),
    # 20 publishers x 20 in flight stays within the subscriber's in-flight window and queue:
    # past those limits both brokers drop the newest messages by design (and count them).
    ("fanin-qos1", ["--scenario", "fanin", "--clients", "20", "--qos", "1", "--window", "20"],
     True),
]


@pytest.mark.parametrize("name,args,iothub_only", CASES, ids=[c[0] for c in CASES])
def test_no_acknowledged_message_is_lost_under_load(broker, name, args, iothub_only):
    if iothub_only and broker.is_mosquitto:
        pytest.skip("mosquitto 2.0.11 loses messages in this case (see the note above CASES)")
    result = run_bench(broker, *args)
    assert result["received"] > 0, result
    integrity = result["integrity"]
    assert integrity["ok"], integrity
    assert integrity["lost"] == 0 and integrity["duplicated"] == 0, integrity
    assert integrity["reordered"] == 0, integrity
