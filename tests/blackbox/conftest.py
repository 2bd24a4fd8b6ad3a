"""Fixtures: every test runs against each selected broker (mosquitto, iothub) and, where it
applies, for MQTT 3.1.1 (protocol level 4) and 5."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import brokers  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--broker", default=os.environ.get("IOTHUB_TEST_BROKER", "both"),
        choices=("mosquitto", "iothub", "both"),
        help="broker under test (env IOTHUB_TEST_BROKER); 'both' runs each test against each")


def pytest_generate_tests(metafunc):
    if "broker_kind" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--broker")
        kinds = list(brokers.KINDS) if choice == "both" else [choice]
        metafunc.parametrize("broker_kind", kinds, ids=kinds)
    if "version" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("versions")
        versions = marker.args[0] if marker else (4, 5)
        names = {3: "v31", 4: "v311", 5: "v5"}
        metafunc.parametrize("version", versions, ids=[names[v] for v in versions])


def pytest_configure(config):
    config.addinivalue_line("markers", "versions(list): protocol levels to run the test for")


@pytest.fixture
def broker_factory(broker_kind, tmp_path):
    """make(**limits) starts a fresh broker of the selected kind with those limits."""
    started = []

    def make(extra_args=(), **limits):
        b = brokers.Broker(broker_kind, tmp_path / ("broker%d" % len(started)), limits, extra_args)
        started.append(b)
        b.start()
        return b

    yield make
    errors = [e for e in (b.stop() for b in started) if e]
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def broker(broker_factory):
    return broker_factory()
