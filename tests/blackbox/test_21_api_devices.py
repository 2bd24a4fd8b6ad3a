"""The management API's devices, through the real Scaleway JavaScript SDK: create, get, list
(filters, ordering), update (description, security, filters, moving to another hub), enable and
disable, delete, and the live fields is_connected / last_activity_at. iothub only."""

import itertools

import pytest

from iotapi import (  # noqa: F401  (fixtures)
    DEVICE_ORDER_BY, EPOCH, api, create_api_key, device_client, iothub_only, is_iso, is_uuid,
    poll, server, server_still_running, unique)

DEVICE_FIELDS = ["allowInsecure", "allowMultipleConnections", "createdAt", "description",
                 "hasCustomCertificate", "hubId", "id", "isConnected", "lastActivityAt",
                 "messageFilters", "name", "region", "status", "updatedAt"]
DEFAULT_FILTERS = {"publish": {"policy": "reject", "topics": []},
                   "subscribe": {"policy": "reject", "topics": []}}


@pytest.fixture
def hub(api):
    return api.new_hub(name=unique("c21-hub"))


@pytest.fixture
def dedicated_hub(api):
    return api.new_hub(name=unique("c21-dedicated"), productPlan="plan_dedicated")


def test_create_device_fields(api, hub):
    name = unique("c21-fields")
    created = api.call("createDevice", hubId=hub["id"], name=name)
    assert "device" in created, created
    # The hub's CA issued the device a certificate, with its key shown only now (the rest of
    # the PKI: test_31_certificates_api.py).
    cert = created.get("certificate")
    assert cert and cert["crt"].startswith("-----BEGIN CERTIFICATE-----"), created
    assert cert["key"].startswith("-----BEGIN RSA PRIVATE KEY-----"), created
    d = created["device"]
    missing = [f for f in DEVICE_FIELDS if f not in d or d[f] is None]
    assert not missing, "fields missing from the created device: %s\n%r" % (missing, d)
    assert is_uuid(d["id"]), d
    assert d["name"] == name and d["hubId"] == hub["id"]
    assert d["status"] == "enabled"
    assert d["allowInsecure"] is False and d["allowMultipleConnections"] is False
    assert d["description"] == ""
    assert d["isConnected"] is False
    assert d["lastActivityAt"] == EPOCH, d
    assert d["hasCustomCertificate"] is False
    assert d["messageFilters"] == DEFAULT_FILTERS, d
    assert d["region"] == "fr-par"
    assert is_iso(d["createdAt"]) and is_iso(d["updatedAt"]) and d["createdAt"] != EPOCH
    got = api.call("getDevice", deviceId=d["id"])
    assert got == d, (got, d)


def test_create_device_with_everything(api, dedicated_hub):
    filters = {"publish": {"policy": "accept", "topics": ["c21/+/out", "c21/all/#"]},
               "subscribe": {"policy": "reject", "topics": ["c21/secret/#"]}}
    d = api.new_device(dedicated_hub["id"], description="a thermometer", allowInsecure=True,
                       allowMultipleConnections=True, messageFilters=filters)
    assert d["description"] == "a thermometer"
    assert d["allowInsecure"] is True and d["allowMultipleConnections"] is True
    assert d["messageFilters"] == filters, d


def test_name_unique_per_hub(api, hub):
    name = unique("c21-same")
    first = api.new_device(hub["id"], name=name)
    err = api.error("createDevice", hubId=hub["id"], name=name)
    assert err.name == "AlreadyExistsError", err
    assert err.status == 409, err
    other_hub = api.new_hub(name=unique("c21-other"))
    second = api.new_device(other_hub["id"], name=name)
    assert second["id"] != first["id"] and second["name"] == name


def test_server_generates_a_device_name(api, hub):
    # The SDK makes up a name itself when given none, so this goes around it.
    r = api.http("POST", "devices", {"hub_id": hub["id"]})
    assert r.status == 200, r
    dev = r.json["device"]
    assert dev["name"].startswith("device-") and len(dev["name"]) > 7, dev
    assert set(r.json["certificate"]) == {"crt", "key"}, r.json
    r2 = api.http("POST", "devices", {"hub_id": hub["id"], "name": ""})
    assert r2.status == 200, r2
    assert r2.json["device"]["name"].startswith("device-")
    assert r2.json["device"]["name"] != dev["name"]


def test_create_in_unknown_hub(api):
    import uuid
    err = api.error("createDevice", hubId=str(uuid.uuid4()), name=unique("c21-orphan"))
    assert err.name == "ResourceNotFoundError", err
    assert err.body.get("resource") == "hub", err.body


def test_multiple_connections_need_a_non_shared_plan(api, hub, dedicated_hub):
    err = api.error("createDevice", hubId=hub["id"], name=unique("c21-multi"),
                    allowMultipleConnections=True)
    assert err.name == "InvalidArgumentsError", err
    assert err.names_argument("allow_multiple_connections"), err
    d = api.new_device(hub["id"])
    err = api.error("updateDevice", deviceId=d["id"], allowMultipleConnections=True)
    assert err.name == "InvalidArgumentsError", err
    assert api.call("getDevice", deviceId=d["id"])["allowMultipleConnections"] is False
    ok = api.new_device(dedicated_hub["id"], allowMultipleConnections=True)
    assert ok["allowMultipleConnections"] is True


@pytest.mark.parametrize("topics", [["c21/#/b"], ["c21/a#"], ["c21/+x/y"], [""],
                                    ["c21/{{foo}}/x"], ["c21/{{ device.colour }}"],
                                    ["c21/{{device.id"]],
                         ids=["hash-not-last", "hash-in-level", "plus-in-level", "empty",
                              "unknown-template", "unknown-template-spaces", "unclosed-template"])
@pytest.mark.parametrize("rule", ["publish", "subscribe"])
def test_invalid_filter_topic(api, hub, rule, topics):
    filters = {"publish": {"policy": "reject", "topics": []},
               "subscribe": {"policy": "reject", "topics": []}}
    filters[rule] = {"policy": "accept", "topics": topics}
    err = api.error("createDevice", hubId=hub["id"], name=unique("c21-badfilter"),
                    messageFilters=filters)
    assert err.name == "InvalidArgumentsError", err
    assert err.names_argument("message_filters"), err
    d = api.new_device(hub["id"])
    err = api.error("updateDevice", deviceId=d["id"], messageFilters=filters)
    assert err.name == "InvalidArgumentsError", err
    assert err.names_argument("message_filters"), err
    assert api.call("getDevice", deviceId=d["id"])["messageFilters"] == DEFAULT_FILTERS


def test_valid_templates_accepted(api, hub):
    filters = {"publish": {"policy": "accept",
                           "topics": ["c21/{{device.id}}/#", "c21/{{ hub.name }}/{{device.name}}",
                                      "c21/{{hub.id}}/+"]},
               "subscribe": {"policy": "reject", "topics": ["c21/{{ device.name }}/secret"]}}
    d = api.new_device(hub["id"], messageFilters=filters)
    # Stored as written; expanded per connection.
    assert d["messageFilters"] == filters, d


# --- update ---------------------------------------------------------------------------------------

def test_update_fields(api, dedicated_hub):
    d = api.new_device(dedicated_hub["id"])
    filters = {"publish": {"policy": "reject", "topics": ["c21/no/#"]},
               "subscribe": {"policy": "accept", "topics": ["c21/yes/+"]}}
    got = api.call("updateDevice", deviceId=d["id"], description="moved to the attic",
                   allowInsecure=True, allowMultipleConnections=True, messageFilters=filters)
    assert got["description"] == "moved to the attic"
    assert got["allowInsecure"] is True and got["allowMultipleConnections"] is True
    assert got["messageFilters"] == filters
    assert got["name"] == d["name"] and got["createdAt"] == d["createdAt"]
    assert got["updatedAt"] >= d["updatedAt"]
    assert api.call("getDevice", deviceId=d["id"]) == got
    # Left-out fields keep their values.
    got = api.call("updateDevice", deviceId=d["id"], allowInsecure=False)
    assert got["description"] == "moved to the attic" and got["messageFilters"] == filters
    assert got["allowMultipleConnections"] is True and got["allowInsecure"] is False


def test_name_is_read_only(api, hub):
    d = api.new_device(hub["id"])
    r = api.http("PATCH", "devices/" + d["id"], {"name": "renamed", "description": "x"})
    # Either refused, or the name is ignored; never renamed.
    assert r.status in (200, 400), r
    assert api.call("getDevice", deviceId=d["id"])["name"] == d["name"]


def test_move_device_to_another_hub(api, hub):
    d = api.new_device(hub["id"])
    target = api.new_hub(name=unique("c21-target"))
    got = api.call("updateDevice", deviceId=d["id"], hubId=target["id"])
    assert got["hubId"] == target["id"], got
    assert api.call("getDevice", deviceId=d["id"])["hubId"] == target["id"]
    assert [x["id"] for x in api.call("listDevices", hubId=target["id"])["devices"]] == [d["id"]]
    assert api.call("listDevices", hubId=hub["id"])["totalCount"] == 0
    assert api.call("getHub", hubId=hub["id"])["deviceCount"] == 0
    assert api.call("getHub", hubId=target["id"])["deviceCount"] == 1


def test_move_refused_when_name_taken_in_target(api, hub):
    name = unique("c21-clash")
    d = api.new_device(hub["id"], name=name)
    target = api.new_hub(name=unique("c21-target"))
    api.new_device(target["id"], name=name)
    err = api.error("updateDevice", deviceId=d["id"], hubId=target["id"])
    assert err.name == "AlreadyExistsError", err
    assert api.call("getDevice", deviceId=d["id"])["hubId"] == hub["id"]


def test_move_to_a_hub_of_another_project(server, api, hub):
    d = api.new_device(hub["id"])
    other = api.as_key(create_api_key(server.data_dir))
    theirs = other.new_hub(name=unique("c21-theirs"))
    err = api.error("updateDevice", deviceId=d["id"], hubId=theirs["id"])
    assert err.name == "ResourceNotFoundError", err
    assert api.call("getDevice", deviceId=d["id"])["hubId"] == hub["id"]
    # And the other project cannot see or touch the device.
    for method, extra in (("getDevice", {}), ("updateDevice", {"description": "x"}),
                          ("disableDevice", {}), ("deleteDevice", {})):
        assert other.error(method, deviceId=d["id"], **extra).name == "ResourceNotFoundError"
    assert other.call("listDevices", hubId=hub["id"])["totalCount"] == 0


def test_disable_enable_delete(api, hub):
    d = api.new_device(hub["id"])
    got = api.call("disableDevice", deviceId=d["id"])
    assert got["status"] == "disabled", got
    assert api.call("getDevice", deviceId=d["id"])["status"] == "disabled"
    got = api.call("enableDevice", deviceId=d["id"])
    assert got["status"] == "enabled", got
    api.call("deleteDevice", deviceId=d["id"])
    err = api.error("getDevice", deviceId=d["id"])
    assert err.name == "ResourceNotFoundError", err
    assert err.body.get("resource") == "device" and err.body.get("resource_id") == d["id"]
    assert api.error("deleteDevice", deviceId=d["id"]).name == "ResourceNotFoundError"
    assert api.call("getHub", hubId=hub["id"])["deviceCount"] == 0


# --- list -----------------------------------------------------------------------------------------

def test_list_filters(api, hub):
    other = api.new_hub(name=unique("c21-list-other"))
    tag = unique("c21-list")
    a = api.new_device(hub["id"], name=tag + "-a", allowInsecure=True)
    b = api.new_device(hub["id"], name=tag + "-b")
    c = api.new_device(other["id"], name=tag + "-c", allowInsecure=True)
    api.call("disableDevice", deviceId=b["id"])

    def ids(**kw):
        got = api.call("listDevicesAll", **kw)
        return sorted(x["id"] for x in got)

    assert ids(hubId=hub["id"]) == sorted([a["id"], b["id"]])
    assert ids(name=tag) == sorted([a["id"], b["id"], c["id"]])
    assert ids(name=tag + "-c") == [c["id"]]
    assert ids(name=tag, allowInsecure=True) == sorted([a["id"], c["id"]])
    assert ids(name=tag, allowInsecure=False) == [b["id"]]
    assert ids(name=tag, status="disabled") == [b["id"]]
    assert ids(name=tag, status="enabled") == sorted([a["id"], c["id"]])
    assert ids(hubId=other["id"], allowInsecure=False) == []
    page = api.call("listDevices", name=tag, pageSize=2)
    assert page["totalCount"] == 3 and len(page["devices"]) == 2, page
    page3 = api.call("listDevices", name=tag, pageSize=2, page=2)
    assert len(page3["devices"]) == 1
    assert len({x["id"] for x in page["devices"] + page3["devices"]}) == 3


def sort_key_of(order_by):
    field = order_by.rsplit("_", 1)[0]
    return {"name": "name", "status": "status", "hub_id": "hubId", "created_at": "createdAt",
            "updated_at": "updatedAt", "allow_insecure": "allowInsecure"}[field]


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("field", ["name", "status", "hub_id", "created_at", "updated_at",
                                   "allow_insecure"])
def test_list_order_by(api, hub, field, direction):
    other = api.new_hub(name=unique("c21-order-other"))
    tag = unique("c21-order")
    specs = [("c", hub, False), ("a", other, True), ("d", hub, True), ("b", other, False)]
    devs = [api.new_device(h["id"], name="%s-%s" % (tag, n), allowInsecure=ins)
            for n, h, ins in specs]
    api.call("disableDevice", deviceId=devs[2]["id"])
    api.call("updateDevice", deviceId=devs[1]["id"], description="touched")
    order_by = "%s_%s" % (field, direction)
    assert order_by in DEVICE_ORDER_BY
    other_dir = "%s_%s" % (field, "desc" if direction == "asc" else "asc")
    got = api.call("listDevices", name=tag, orderBy=order_by)["devices"]
    rev = api.call("listDevices", name=tag, orderBy=other_dir)["devices"]
    assert sorted(d["id"] for d in got) == sorted(d["id"] for d in devs)
    asc, desc = (got, rev) if direction == "asc" else (rev, got)
    key = sort_key_of(order_by)
    a_vals = [d[key] for d in asc]
    d_vals = [d[key] for d in desc]
    if field in ("name", "hub_id", "created_at", "updated_at", "allow_insecure"):
        assert a_vals == sorted(a_vals), a_vals
        assert d_vals == sorted(d_vals, reverse=True), d_vals
    else:
        groups = [k for k, _ in itertools.groupby(a_vals)]
        assert len(groups) == len(set(a_vals)), a_vals
        assert [k for k, _ in itertools.groupby(d_vals)] == groups[::-1], (a_vals, d_vals)
    if field == "name":
        assert [d["name"][-1] for d in asc] == ["a", "b", "c", "d"]


# --- live fields ----------------------------------------------------------------------------------

def test_is_connected_and_last_activity(server, api, hub):
    d = api.new_device(hub["id"], allowInsecure=True)
    assert d["isConnected"] is False and d["lastActivityAt"] == EPOCH
    c = device_client(server, d["id"])
    got = poll(lambda: (lambda x: x if x["isConnected"] else None)(
        api.call("getDevice", deviceId=d["id"])), what="is_connected")
    assert got["lastActivityAt"] != EPOCH and got["lastActivityAt"] >= d["createdAt"], got
    assert api.call("getHub", hubId=hub["id"])["connectedDeviceCount"] == 1
    listed = api.call("listDevices", hubId=hub["id"])["devices"][0]
    assert listed["isConnected"] is True
    c.disconnect()
    gone = poll(lambda: (lambda x: x if not x["isConnected"] else None)(
        api.call("getDevice", deviceId=d["id"])), what="is_connected false")
    assert gone["lastActivityAt"] >= got["lastActivityAt"]
    assert api.call("getHub", hubId=hub["id"])["connectedDeviceCount"] == 0
    # A later connection moves last_activity_at on.
    c = device_client(server, d["id"])
    again = poll(lambda: (lambda x: x if x["isConnected"] else None)(
        api.call("getDevice", deviceId=d["id"])), what="is_connected again")
    assert again["lastActivityAt"] >= got["lastActivityAt"]
    c.disconnect()
