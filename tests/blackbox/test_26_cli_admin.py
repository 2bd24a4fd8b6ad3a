"""The admin side of the command line: the admin token file, `iothub apikey create|list|delete`
on the data directory, and `iothub hub …` / `iothub device …`, which call the management API
(--api-url/--token, or IOTHUB_API_URL/IOTHUB_TOKEN). iothub only."""

import json
import stat
import uuid

import pytest

from iotapi import (  # noqa: F401  (fixtures)
    Api, UUID_RE, api, create_api_key, iothub_only, is_uuid, poll, read_admin_token, run_cli,
    server, server_still_running, unique)


def cli_json(*args, env=None):
    r = run_cli(*args, env=env)
    assert r.returncode == 0, "iothub %s failed (%d):\n%s\n%s" % (
        " ".join(map(str, args)), r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def api_args(server, token):
    return ["--api-url", server.api_url, "--token", token]


# --- admin token ----------------------------------------------------------------------------------

def test_admin_token_file(server):
    path = server.data_dir / "api-token"
    assert path.exists(), "no admin token at %s" % path
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    text = path.read_text()
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert UUID_RE.match(text.strip()), repr(text)


def test_admin_token_works_and_others_do_not(server):
    token = read_admin_token(server.data_dir)
    ok = Api(server.api_url, token)
    assert ok.http("GET", "hubs").status == 200
    assert Api(server.api_url, str(uuid.uuid4())).http("GET", "hubs").status == 401


# --- apikey ---------------------------------------------------------------------------------------

def test_apikey_create(server):
    project = str(uuid.uuid4())
    key = cli_json("apikey", "create", "--data-dir", server.data_dir, "--project", project,
                   "-o", "json")
    assert set(key) >= {"access_key", "secret_key", "project_id"}, key
    assert key["project_id"] == project
    assert is_uuid(key["secret_key"]), key
    assert key["access_key"].startswith("SCW") and len(key["access_key"]) == 20, key
    # The key works at once against the running server, on its own (empty) project.
    other = Api(server.api_url, key["secret_key"], project, key["access_key"])
    assert other.call("listHubs")["totalCount"] == 0
    hub = other.call("createHub", name=unique("c26-key"))
    assert hub["projectId"] == project
    other.cleanup()


def test_apikey_create_without_project_makes_one(server):
    key = cli_json("apikey", "create", "--data-dir", server.data_dir, "-o", "json")
    assert is_uuid(key["project_id"]), key
    again = cli_json("apikey", "create", "--data-dir", server.data_dir, "-o", "json")
    assert again["project_id"] != key["project_id"]
    assert again["secret_key"] != key["secret_key"]


def test_two_keys_of_one_project_share_its_hubs(server):
    project = str(uuid.uuid4())
    a = Api(server.api_url, **_key_kw(create_api_key(server.data_dir, project)))
    b = Api(server.api_url, **_key_kw(create_api_key(server.data_dir, project)))
    hub = a.call("createHub", name=unique("c26-shared"))
    assert b.call("getHub", hubId=hub["id"])["name"] == hub["name"]
    a.cleanup()


def _key_kw(key):
    return {"token": key["secret_key"], "project_id": key["project_id"],
            "access_key": key["access_key"]}


def key_list(server):
    """`apikey list -o json`: the keys, as a list or under "api_keys"."""
    listed = cli_json("apikey", "list", "--data-dir", server.data_dir, "-o", "json")
    if isinstance(listed, dict):
        listed = listed.get("api_keys")
    assert isinstance(listed, list), listed
    return listed


def test_apikey_list_and_delete(server):
    key = create_api_key(server.data_dir)
    listed = key_list(server)
    mine = [k for k in listed if k.get("access_key") == key["access_key"]]
    assert len(mine) == 1, listed
    assert mine[0].get("project_id") == key["project_id"], mine
    # Secrets are shown once, at creation, and never listed.
    assert key["secret_key"] not in json.dumps(listed)
    other = Api(server.api_url, key["secret_key"])
    assert other.http("GET", "hubs").status == 200
    r = run_cli("apikey", "delete", "--data-dir", server.data_dir, key["access_key"])
    assert r.returncode == 0, r.stderr
    listed = key_list(server)
    assert not [k for k in listed if k.get("access_key") == key["access_key"]], listed
    # The running server stops accepting it (it may cache a key for a short while).
    poll(lambda: other.http("GET", "hubs").status == 401, timeout=120, interval=0.5,
         what="the deleted key to be refused")


def test_apikey_delete_unknown(server):
    r = run_cli("apikey", "delete", "--data-dir", server.data_dir, "SCWNOSUCHKEY000000000")
    assert r.returncode != 0
    assert "SCWNOSUCHKEY000000000" in r.stdout + r.stderr


# --- hub and device commands ----------------------------------------------------------------------

def test_hub_commands(server, api):
    base = api_args(server, api.token)
    name = unique("c26-cli-hub")
    hub = cli_json("hub", "create", "--name", name, *base, "-o", "json")
    assert hub["name"] == name and is_uuid(hub["id"]), hub
    api.created_hubs.append(hub["id"])
    got = cli_json("hub", "get", hub["id"], *base, "-o", "json")
    assert got["id"] == hub["id"] and got["name"] == name, got
    listed = cli_json("hub", "list", *base, "-o", "json")
    items = listed["hubs"] if isinstance(listed, dict) else listed
    assert hub["id"] in [h["id"] for h in items], listed
    # The same through the environment.
    env = {"IOTHUB_API_URL": server.api_url, "IOTHUB_TOKEN": api.token}
    got = cli_json("hub", "get", hub["id"], "-o", "json", env=env)
    assert got["id"] == hub["id"]
    r = run_cli("hub", "delete", hub["id"], *base)
    assert r.returncode == 0, r.stderr
    assert api.error("getHub", hubId=hub["id"]).name == "ResourceNotFoundError"


def test_device_commands(server, api):
    base = api_args(server, api.token)
    hub = api.new_hub(name=unique("c26-cli-dev"))
    name = unique("c26-dev")
    created = cli_json("device", "create", "--hub", hub["id"], "--name", name, *base,
                       "-o", "json")
    dev = created.get("device", created)
    assert dev["name"] == name and dev["hub_id"] == hub["id"], created
    got = cli_json("device", "get", dev["id"], *base, "-o", "json")
    assert got["id"] == dev["id"], got
    listed = cli_json("device", "list", "--hub", hub["id"], *base, "-o", "json")
    items = listed["devices"] if isinstance(listed, dict) else listed
    assert [d["id"] for d in items] == [dev["id"]], listed
    r = run_cli("device", "delete", dev["id"], *base)
    assert r.returncode == 0, r.stderr
    assert api.error("getDevice", deviceId=dev["id"]).name == "ResourceNotFoundError"


def test_token_read_from_the_data_directory(server, api):
    hub = api.new_hub(name=unique("c26-datadir"))
    got = cli_json("hub", "get", hub["id"], "--api-url", server.api_url, "--data-dir",
                   server.data_dir, "-o", "json")
    assert got["id"] == hub["id"]


def test_hub_and_device_options(server, api):
    base = api_args(server, api.token)
    hub = cli_json("hub", "create", "--name", unique("c26-opts"), "--plan", "plan_dedicated",
                   "--events-topic-prefix", "c26/events", "--disable-events", *base, "-o", "json")
    api.created_hubs.append(hub["id"])
    assert (hub["product_plan"], hub["events_topic_prefix"], hub["disable_events"]) == (
        "plan_dedicated", "c26/events", True), hub
    filters = {"publish": {"policy": "accept", "topics": ["c26/#"]},
               "subscribe": {"policy": "reject", "topics": ["c26/secret"]}}
    dev = cli_json("device", "create", "--hub", hub["id"], "--name", unique("c26-opt-dev"),
                   "--allow-insecure", "--allow-multiple-connections", "--description", "cli",
                   "--message-filters", json.dumps(filters), *base, "-o", "json")
    # The API's answer: the device and the certificate its hub issued (key shown only now).
    assert dev["certificate"]["key"].startswith("-----BEGIN RSA PRIVATE KEY-----"), dev
    dev = dev["device"]
    assert (dev["allow_insecure"], dev["allow_multiple_connections"], dev["description"]) == (
        True, True, "cli"), dev
    assert dev["message_filters"] == filters, dev
    got = api.call("getDevice", deviceId=dev["id"])
    assert got["messageFilters"] == filters and got["allowInsecure"] is True


def test_cli_reports_api_errors(server, api):
    base = api_args(server, api.token)
    missing = str(uuid.uuid4())
    r = run_cli("hub", "get", missing, *base)
    assert r.returncode != 0
    assert "not_found" in r.stderr or "not found" in r.stderr.lower(), r.stderr
    r = run_cli("hub", "list", "--api-url", server.api_url, "--token", str(uuid.uuid4()))
    assert r.returncode != 0
    assert "denied" in r.stderr.lower() or "401" in r.stderr or "auth" in r.stderr.lower(), \
        r.stderr


def test_cli_without_server(tmp_path):
    r = run_cli("hub", "list", "--api-url", "http://127.0.0.1:1", "--token", str(uuid.uuid4()))
    assert r.returncode != 0
    assert r.stderr.strip(), "no message when the API cannot be reached"
