"""Errors of the management API, over raw HTTP: authentication, malformed bodies, wrong types,
oversized bodies, unknown ids and paths, wrong methods. Every error body is JSON with `type` and
`message`, and the server keeps serving after each (checked after every test). Also what the SDK
makes of them. iothub only."""

import json
import socket
import uuid

import pytest

from iotapi import (  # noqa: F401  (fixtures)
    API_PREFIX, api, iothub_only, server, server_still_running, unique)


def assert_error(r, status, type_=None):
    assert r.status == status, r
    assert r.headers.get("content-type", "").split(";")[0].strip() == "application/json", \
        (r.headers, r.body)
    assert isinstance(r.json, dict), r
    assert isinstance(r.json.get("type"), str) and r.json["type"], r.json
    assert isinstance(r.json.get("message"), str) and r.json["message"], r.json
    if type_ is not None:
        assert r.json["type"] == type_, r.json
    return r.json


def names_field(body, field):
    for d in body.get("details") or []:
        if isinstance(d, dict) and field in str(d.get("argument_name", "")):
            return True
    return field in body.get("message", "")


@pytest.fixture(scope="module")
def hub(api):
    h = api.new_hub(name=unique("c22-hub"))
    api.created_hubs.clear()  # shared by the module's tests: not cleaned up after the first
    return h


# --- authentication -------------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "", str(uuid.uuid4()), "not-a-uuid",
                                   "SCWXXXXXXXXXXXXXXXXX"],
                         ids=["missing", "empty", "unknown", "malformed", "access-key"])
@pytest.mark.parametrize("method,path", [("GET", "hubs"), ("POST", "hubs"),
                                         ("GET", "devices"), ("DELETE", "hubs/%s" % uuid.uuid4())])
def test_authentication_required(api, token, method, path):
    body = {"name": unique("c22-anon")} if method == "POST" else None
    r = api.http(method, path, body, token=token)
    assert_error(r, 401, "denied_authentication")


def test_unknown_token_through_the_sdk(api):
    from iotapi import Api
    other = Api(api.url, str(uuid.uuid4()))
    err = other.error("listHubs")
    assert err.status == 401, err
    assert err.body.get("type") == "denied_authentication", err.body


def test_refused_request_changes_nothing(api):
    name = unique("c22-unauth")
    api.http("POST", "hubs", {"name": name}, token=str(uuid.uuid4()))
    assert api.call("listHubs", name=name)["totalCount"] == 0


# --- bodies ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", ["{", "not json", "[1,2", '{"name": "x",}', "\xff\xfe",
                                  '"just a string"', "[]", "null", "42"],
                         ids=["unterminated", "text", "array-unterminated", "trailing-comma",
                              "not-utf8", "string", "array", "null", "number"])
def test_bad_json_body(api, body):
    data = body.encode("latin-1")
    r = api.http("POST", "hubs", data)
    assert_error(r, 400, "invalid_arguments")


def test_bad_json_on_patch_and_device(api, hub):
    assert_error(api.http("PATCH", "hubs/" + hub["id"], b"{nope"), 400, "invalid_arguments")
    assert_error(api.http("POST", "devices", b"{nope"), 400, "invalid_arguments")


@pytest.mark.parametrize("field,value", [
    ("name", 5), ("name", ["a"]), ("disable_events", "yes"), ("events_topic_prefix", 7),
    ("product_plan", "plan_gold"), ("product_plan", 3), ("project_id", "not-a-uuid"),
    ("presence_events", "no")])
def test_wrong_types_in_hub_create(api, field, value):
    body = {"name": unique("c22-types")}
    body[field] = value
    r = api.http("POST", "hubs", body)
    body = assert_error(r, 400, "invalid_arguments")
    assert names_field(body, field), body


@pytest.mark.parametrize("field,value", [
    ("name", 5), ("disable_events", 1), ("events_topic_prefix", {}),
    ("product_plan", "plan_gold"), ("enable_device_auto_provisioning", "true")])
def test_wrong_types_in_hub_update(api, hub, field, value):
    r = api.http("PATCH", "hubs/" + hub["id"], {field: value})
    body = assert_error(r, 400, "invalid_arguments")
    assert names_field(body, field), body


@pytest.mark.parametrize("field,value", [
    ("allow_insecure", "true"), ("allow_multiple_connections", 0), ("description", 12),
    ("message_filters", "all"), ("message_filters", {"publish": {"policy": "maybe", "topics": []}}),
    ("message_filters", {"publish": {"policy": "accept", "topics": "a/b"}}),
    ("message_filters", {"publish": {"policy": "accept", "topics": [1]}})])
def test_wrong_types_in_device_create(api, hub, field, value):
    r = api.http("POST", "devices", {"hub_id": hub["id"], "name": unique("c22-dev"), field: value})
    body = assert_error(r, 400, "invalid_arguments")
    assert names_field(body, field), body


def test_device_create_without_hub(api):
    r = api.http("POST", "devices", {"name": unique("c22-nohub")})
    body = assert_error(r, 400, "invalid_arguments")
    assert names_field(body, "hub_id"), body
    r = api.http("POST", "devices", {"name": unique("c22-nohub"), "hub_id": "nope"})
    body = assert_error(r, 400, "invalid_arguments")
    assert names_field(body, "hub_id"), body


def test_wrong_type_through_the_sdk(api):
    err = api.error("createHub", name=unique("c22-sdk"), productPlan="plan_gold")
    assert err.name == "InvalidArgumentsError", err
    assert err.status == 400
    assert err.names_argument("product_plan"), err


def test_body_over_one_mebibyte(api):
    size = 1024 * 1024 + 1
    payload = b'{"name": "' + b"x" * (size - 12) + b'"}'
    assert len(payload) > 1024 * 1024
    chunks = [payload[i:i + 65536] for i in range(0, len(payload), 65536)]
    r = api.http_streamed("POST", "hubs", ["Content-Length: %d" % len(payload)], chunks)
    assert r is not None, "no response to an oversized body"
    assert_error(r, 413)


def test_chunked_body_over_one_mebibyte(api):
    payload = b'{"name": "' + b"y" * (1024 * 1024 + 100) + b'"}'
    chunks = []
    for i in range(0, len(payload), 65536):
        part = payload[i:i + 65536]
        chunks.append(b"%x\r\n" % len(part) + part + b"\r\n")
    chunks.append(b"0\r\n\r\n")
    r = api.http_streamed("POST", "hubs", ["Transfer-Encoding: chunked"], chunks)
    assert r is not None, "no response to an oversized chunked body"
    assert_error(r, 413)


def test_body_just_under_the_limit_is_read(api):
    # A valid request padded near 1 MiB is not refused for its size.
    name = unique("c22-big")
    body = json.dumps({"name": name, "description": "z" * (1024 * 1024 - 200)}).encode()
    assert len(body) < 1024 * 1024
    r = api.http("POST", "hubs", body)
    assert r.status != 413, r


# --- ids, paths, methods --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["hubs", "devices"])
def test_unknown_id(api, kind):
    missing = str(uuid.uuid4())
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {}), ("DELETE", "", None),
                                 ("POST", "/enable", {}), ("POST", "/disable", {})):
        r = api.http(method, "%s/%s%s" % (kind, missing, suffix), body)
        err = assert_error(r, 404, "not_found")
        assert err.get("resource") == kind[:-1], (method, suffix, err)
        assert err.get("resource_id") == missing, (method, suffix, err)


@pytest.mark.parametrize("kind", ["hubs", "devices"])
@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "%s-extra" % uuid.uuid4(),
                                    str(uuid.uuid4()).replace("-", "")])
def test_id_that_is_not_a_uuid(api, kind, bad_id):
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {}), ("DELETE", "", None),
                                 ("POST", "/enable", {})):
        r = api.http(method, "%s/%s%s" % (kind, bad_id, suffix), body)
        assert_error(r, 400)


def test_unknown_id_through_the_sdk(api):
    missing = str(uuid.uuid4())
    err = api.error("getHub", hubId=missing)
    assert err.name == "ResourceNotFoundError" and err.status == 404, err
    assert err.error.get("resource") == "hub" and err.error.get("resourceId") == missing, err
    err = api.error("getDevice", deviceId=missing)
    assert err.name == "ResourceNotFoundError", err
    assert err.error.get("resource") == "device"


@pytest.mark.parametrize("region", ["nl-ams", "pl-waw", "xx"])
def test_wrong_region(api, region):
    r = api.http("GET", "/iot/v1/regions/%s/hubs" % region)
    assert_error(r, 404)
    r = api.http("POST", "/iot/v1/regions/%s/hubs" % region, {"name": unique("c22-region")})
    assert_error(r, 404)


@pytest.mark.parametrize("path", ["/", "/iot", "/iot/v1", "/iot/v2/regions/fr-par/hubs",
                                  API_PREFIX, API_PREFIX + "/nothing",
                                  API_PREFIX + "/hubs/%s/nothing" % uuid.uuid4(),
                                  API_PREFIX + "/devices/%s/enable/more" % uuid.uuid4()])
def test_unknown_path(api, path):
    assert_error(api.http("GET", path), 404)


@pytest.mark.parametrize("method,path", [("PUT", "hubs"), ("DELETE", "hubs"), ("PATCH", "hubs"),
                                         ("PUT", "devices"), ("DELETE", "devices"),
                                         ("POST", "hubs/{hub}"), ("PUT", "hubs/{hub}"),
                                         ("GET", "hubs/{hub}/enable"),
                                         ("DELETE", "hubs/{hub}/disable")])
def test_wrong_method(api, hub, method, path):
    r = api.http(method, path.format(hub=hub["id"]), {} if method in ("POST", "PUT", "PATCH")
                 else None)
    assert_error(r, 405)


@pytest.mark.parametrize("query", [{"page_size": "abc"}, {"page": "x"}, {"order_by": "colour_asc"},
                                   {"page_size": "101"}, {"page": "0"}, {"page_size": "0"}])
def test_bad_list_parameters(api, query):
    r = api.http("GET", "hubs", query=query)
    assert_error(r, 400, "invalid_arguments")


def test_bad_device_list_filters(api):
    for query in ({"status": "sleepy"}, {"allow_insecure": "maybe"}, {"hub_id": "nope"}):
        assert_error(api.http("GET", "devices", query=query), 400, "invalid_arguments")


def test_precondition_body(api, hub):
    d = api.new_device(hub["id"])
    r = api.http("DELETE", "hubs/" + hub["id"])
    body = assert_error(r, 412, "precondition_failed")
    assert isinstance(body.get("precondition"), str) and body["precondition"], body
    assert isinstance(body.get("help_message"), str), body
    api.call("deleteDevice", deviceId=d["id"])


def test_already_exists_body(api, hub):
    name = unique("c22-dup")
    api.new_device(hub["id"], name=name)
    r = api.http("POST", "devices", {"hub_id": hub["id"], "name": name})
    body = assert_error(r, 409, "already_exists")
    assert body.get("resource") == "device", body
    assert isinstance(body.get("help_message"), str), body


# --- connection handling --------------------------------------------------------------------------

def test_keep_alive_connection_serves_several_requests(api):
    import http.client
    conn = http.client.HTTPConnection(api.host, api.port, timeout=10)
    try:
        for i in range(5):
            conn.request("GET", API_PREFIX + "/hubs", headers={"X-Auth-Token": api.token})
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            conn.request("GET", API_PREFIX + "/hubs/" + str(uuid.uuid4()),
                         headers={"X-Auth-Token": api.token})
            r = conn.getresponse()
            r.read()
            assert r.status == 404
    finally:
        conn.close()


def test_garbage_instead_of_http(api):
    for junk in (b"\x00\x01\x02\x03garbage\r\n\r\n", b"GET\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                 b"MQTT\x04\x02\x00\x3c\r\n\r\n"):
        with socket.create_connection((api.host, api.port), timeout=10) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            # A 400 or a plain close; never a crash (checked after the test).
            assert data == b"" or data.startswith(b"HTTP/1.1 4"), data[:200]


def test_half_sent_request_then_close(api):
    with socket.create_connection((api.host, api.port), timeout=10) as s:
        s.sendall(b"POST %s/hubs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"na"
                  % API_PREFIX.encode())
    r = api.http("GET", "hubs")
    assert r.status == 200, r
