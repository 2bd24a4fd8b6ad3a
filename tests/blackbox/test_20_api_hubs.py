"""The management API's hubs, through the real Scaleway JavaScript SDK (@scaleway/sdk-iot): create,
get, wait, update, enable/disable, delete, list (paging, ordering, name filter) and project
isolation; the `presence_events` extension through raw HTTP. iothub only."""

import itertools
import uuid

import pytest

from iotapi import (  # noqa: F401  (fixtures)
    EPOCH, HUB_ORDER_BY, api, create_api_key, iothub_only, is_iso, is_uuid, server,
    server_still_running, start_server, stop_server, unique, admin_api)

HUB_FIELDS = ["connectedDeviceCount", "createdAt", "deviceCount", "disableEvents",
              "enableDeviceAutoProvisioning", "enabled", "endpoint", "eventsTopicPrefix",
              "hasCustomCa", "id", "name", "organizationId", "productPlan", "projectId", "region",
              "status", "updatedAt"]


def test_create_hub_returns_every_field(api):
    name = unique("c20-fields")
    hub = api.call("createHub", name=name)
    missing = [f for f in HUB_FIELDS if f not in hub or hub[f] is None]
    assert not missing, "fields missing from the created hub: %s\n%r" % (missing, hub)
    assert is_uuid(hub["id"]), hub
    assert hub["name"] == name
    assert hub["status"] == "enabling", hub
    assert hub["enabled"] is True
    assert hub["productPlan"] == "plan_shared"
    assert hub["eventsTopicPrefix"] == "$SCW/events"
    assert hub["disableEvents"] is False
    assert hub["hasCustomCa"] is False
    assert hub["enableDeviceAutoProvisioning"] is False
    assert hub["deviceCount"] == 0 and hub["connectedDeviceCount"] == 0
    assert isinstance(hub["endpoint"], str) and hub["endpoint"], hub
    assert hub["region"] == "fr-par"
    assert is_uuid(hub["projectId"]), hub
    assert hub["organizationId"] == hub["projectId"], hub
    assert is_iso(hub["createdAt"]) and is_iso(hub["updatedAt"]), hub
    assert hub["createdAt"] != EPOCH
    assert hub["updatedAt"] >= hub["createdAt"]


def test_hub_becomes_ready(api):
    hub = api.call("createHub", name=unique("c20-ready"))
    got = api.call("waitForHub", hubId=hub["id"])
    assert got["status"] == "ready", got
    again = api.call("getHub", hubId=hub["id"])
    assert again["status"] == "ready" and again["enabled"] is True, again
    assert again["id"] == hub["id"] and again["name"] == hub["name"]
    assert again["createdAt"] == hub["createdAt"]


def test_create_hub_with_options(api):
    name = unique("c20-options")
    hub = api.call("createHub", name=name, productPlan="plan_dedicated", disableEvents=True,
                   eventsTopicPrefix="c20/events")
    assert hub["productPlan"] == "plan_dedicated", hub
    assert hub["disableEvents"] is True
    assert hub["eventsTopicPrefix"] == "c20/events"
    got = api.call("waitForHub", hubId=hub["id"])
    assert (got["productPlan"], got["disableEvents"], got["eventsTopicPrefix"]) == (
        "plan_dedicated", True, "c20/events"), got


def test_create_hub_in_own_project_explicitly(api):
    first = api.new_hub(name=unique("c20-proj"))
    hub = api.call("createHub", name=unique("c20-proj"), projectId=first["projectId"])
    assert hub["projectId"] == first["projectId"]


def test_disable_then_enable(api):
    hub = api.new_hub(name=unique("c20-disable"))
    got = api.call("disableHub", hubId=hub["id"])
    assert got["status"] == "disabling", got
    assert got["enabled"] is False
    got = api.call("waitForHub", hubId=hub["id"])
    assert got["status"] == "disabled" and got["enabled"] is False, got
    got = api.call("enableHub", hubId=hub["id"])
    assert got["status"] == "enabling" and got["enabled"] is True, got
    got = api.call("waitForHub", hubId=hub["id"])
    assert got["status"] == "ready" and got["enabled"] is True, got


def test_update_name_and_events(api):
    hub = api.new_hub(name=unique("c20-update"))
    new_name = unique("c20-renamed")
    got = api.call("updateHub", hubId=hub["id"], name=new_name, disableEvents=True,
                   eventsTopicPrefix="c20/renamed/events")
    assert got["name"] == new_name
    assert got["disableEvents"] is True
    assert got["eventsTopicPrefix"] == "c20/renamed/events"
    assert got["updatedAt"] >= hub["updatedAt"]
    got = api.call("getHub", hubId=hub["id"])
    assert (got["name"], got["disableEvents"], got["eventsTopicPrefix"]) == (
        new_name, True, "c20/renamed/events"), got
    # Fields left out of an update keep their values.
    got = api.call("updateHub", hubId=hub["id"], disableEvents=False)
    assert got["name"] == new_name and got["eventsTopicPrefix"] == "c20/renamed/events"
    assert got["disableEvents"] is False


def test_plan_change_needs_disabled_hub(api):
    hub = api.new_hub(name=unique("c20-plan"))
    err = api.error("updateHub", hubId=hub["id"], productPlan="plan_dedicated")
    assert err.name == "PreconditionFailedError", err
    assert api.call("getHub", hubId=hub["id"])["productPlan"] == "plan_shared"
    api.disable_hub(hub["id"])
    got = api.call("updateHub", hubId=hub["id"], productPlan="plan_dedicated")
    assert got["productPlan"] == "plan_dedicated", got
    got = api.enable_hub(hub["id"])
    assert got["productPlan"] == "plan_dedicated"


def test_auto_provisioning_needs_custom_ca(api):
    hub = api.new_hub(name=unique("c20-autoprov"))
    err = api.error("updateHub", hubId=hub["id"], enableDeviceAutoProvisioning=True)
    assert err.name == "PreconditionFailedError", err
    assert api.call("getHub", hubId=hub["id"])["enableDeviceAutoProvisioning"] is False


def test_delete_empty_hub(api):
    hub = api.new_hub(name=unique("c20-delete"))
    api.call("deleteHub", hubId=hub["id"])
    err = api.error("getHub", hubId=hub["id"])
    assert err.name == "ResourceNotFoundError", err
    assert err.status == 404
    assert err.body.get("resource") == "hub" and err.body.get("resource_id") == hub["id"], err.body


def test_delete_hub_with_devices(api):
    hub = api.new_hub(name=unique("c20-delete-devs"))
    devices = [api.new_device(hub["id"]) for _ in range(2)]
    assert api.call("getHub", hubId=hub["id"])["deviceCount"] == 2
    err = api.error("deleteHub", hubId=hub["id"])
    assert err.name == "PreconditionFailedError", err
    assert api.call("getHub", hubId=hub["id"])["id"] == hub["id"]
    err = api.error("deleteHub", hubId=hub["id"], deleteDevices=False)
    assert err.name == "PreconditionFailedError", err
    api.call("deleteHub", hubId=hub["id"], deleteDevices=True)
    assert api.error("getHub", hubId=hub["id"]).name == "ResourceNotFoundError"
    for d in devices:
        err = api.error("getDevice", deviceId=d["id"])
        assert err.name == "ResourceNotFoundError", err
    left = api.call("listDevices", hubId=hub["id"])
    assert left["totalCount"] == 0 and left["devices"] == [], left


def test_device_counts(api):
    hub = api.new_hub(name=unique("c20-count"))
    for _ in range(3):
        api.new_device(hub["id"])
    got = api.call("getHub", hubId=hub["id"])
    assert got["deviceCount"] == 3 and got["connectedDeviceCount"] == 0, got


# --- listing --------------------------------------------------------------------------------------

def make_hubs(api, prefix, count):
    return [api.call("createHub", name="%s-%02d" % (prefix, i)) for i in range(count)]


def test_list_paging(api):
    prefix = unique("c20-page")
    hubs = make_hubs(api, prefix, 5)
    first = api.call("listHubs", name=prefix, pageSize=2)
    assert first["totalCount"] == 5, first
    assert len(first["hubs"]) == 2
    third = api.call("listHubs", name=prefix, pageSize=2, page=3)
    assert third["totalCount"] == 5 and len(third["hubs"]) == 1, third
    beyond = api.call("listHubs", name=prefix, pageSize=2, page=4)
    assert beyond["totalCount"] == 5 and beyond["hubs"] == [], beyond
    # Pages do not overlap and together hold every hub.
    pages = [api.call("listHubs", name=prefix, pageSize=2, page=p)["hubs"] for p in (1, 2, 3)]
    ids = [h["id"] for h in itertools.chain(*pages)]
    assert sorted(ids) == sorted(h["id"] for h in hubs)
    # The SDK's pagination helper (enrichForPagination .all()) walks the pages itself.
    every = api.call("listHubsAll", name=prefix, pageSize=2)
    assert sorted(h["id"] for h in every) == sorted(h["id"] for h in hubs)
    per_page = api.call("listHubsPages", name=prefix, pageSize=2)
    assert [len(p) for p in per_page] == [2, 2, 1], per_page


def test_list_default_page_size_is_20_and_max_100(api):
    prefix = unique("c20-size")
    make_hubs(api, prefix, 21)
    # The SDK sends no page_size unless told: the server's default applies.
    got = api.call("listHubs", name=prefix)
    assert got["totalCount"] == 21 and len(got["hubs"]) == 20, (got["totalCount"], len(got["hubs"]))
    got = api.call("listHubs", name=prefix, pageSize=100)
    assert len(got["hubs"]) == 21
    err = api.error("listHubs", name=prefix, pageSize=101)
    assert err.name == "InvalidArgumentsError", err
    assert err.names_argument("page_size"), err


def test_list_name_filter_is_substring(api):
    tag = uuid.uuid4().hex[:10]
    a = api.call("createHub", name="c20-left-%s-one" % tag)
    b = api.call("createHub", name="c20-right-%s-two" % tag)
    api.call("createHub", name="c20-other-%s" % uuid.uuid4().hex[:10])
    got = api.call("listHubs", name=tag)
    assert sorted(h["id"] for h in got["hubs"]) == sorted([a["id"], b["id"]]), got
    assert got["totalCount"] == 2
    got = api.call("listHubs", name="right-%s" % tag)
    assert [h["id"] for h in got["hubs"]] == [b["id"]], got


def sort_key_of(order_by):
    field = order_by.rsplit("_", 1)[0]
    return {"name": "name", "status": "status", "product_plan": "productPlan",
            "created_at": "createdAt", "updated_at": "updatedAt"}[field]


def check_ordering(asc_items, desc_items, key, strict_values):
    """asc_items/desc_items are the same items listed *_asc and *_desc by `key`. For values whose
    order is plain (names, dates) the lists must be sorted by value; for enums the order of the
    values is the server's, but each value's items must be together and *_desc must give the
    values in the opposite order to *_asc."""
    asc = [i[key] for i in asc_items]
    desc = [i[key] for i in desc_items]
    if strict_values:
        assert asc == sorted(asc), asc
        assert desc == sorted(desc, reverse=True), desc
        return
    groups_asc = [k for k, _ in itertools.groupby(asc)]
    groups_desc = [k for k, _ in itertools.groupby(desc)]
    assert len(groups_asc) == len(set(asc)), "values not grouped: %r" % asc
    assert groups_desc == groups_asc[::-1], (asc, desc)


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("field", ["name", "status", "product_plan", "created_at", "updated_at"])
def test_list_order_by(api, field, direction):
    prefix = unique("c20-order")
    # Names not in creation order; two plans; one hub disabled; updates in another order.
    specs = [("c", "plan_shared"), ("a", "plan_dedicated"), ("d", "plan_shared"),
             ("b", "plan_dedicated")]
    hubs = [api.call("createHub", name="%s-%s" % (prefix, n), productPlan=plan)
            for n, plan in specs]
    for h in hubs:
        api.wait_hub(h["id"])
    api.disable_hub(hubs[2]["id"])
    api.call("updateHub", hubId=hubs[1]["id"], name=hubs[1]["name"])
    order_by = "%s_%s" % (field, direction)
    other = "%s_%s" % (field, "desc" if direction == "asc" else "asc")
    got = api.call("listHubs", name=prefix, orderBy=order_by)["hubs"]
    rev = api.call("listHubs", name=prefix, orderBy=other)["hubs"]
    assert sorted(h["id"] for h in got) == sorted(h["id"] for h in hubs)
    asc, desc = (got, rev) if direction == "asc" else (rev, got)
    key = sort_key_of(order_by)
    check_ordering(asc, desc, key, strict_values=field in ("name", "created_at", "updated_at"))
    if field == "name":
        assert [h["name"][-1] for h in asc] == ["a", "b", "c", "d"]


def test_list_rejects_unknown_order(api):
    err = api.error("listHubs", orderBy="colour_asc")
    assert err.name == "InvalidArgumentsError", err


def test_order_by_values_are_the_sdks():
    # The SDK's enum, as the parametrized test above covers it.
    assert sorted(HUB_ORDER_BY) == sorted(
        "%s_%s" % (f, d) for f in ("name", "status", "product_plan", "created_at", "updated_at")
        for d in ("asc", "desc"))


# --- projects -------------------------------------------------------------------------------------

def test_project_isolation(server, api):
    mine = api.new_hub(name=unique("c20-mine"))
    other = api.as_key(create_api_key(server.data_dir))
    assert other.call("listHubs", name=mine["name"])["totalCount"] == 0
    assert all(h["id"] != mine["id"] for h in other.call("listHubsAll"))
    for method, extra in (("getHub", {}), ("updateHub", {"name": "stolen"}),
                          ("disableHub", {}), ("enableHub", {}), ("deleteHub", {})):
        err = other.error(method, hubId=mine["id"], **extra)
        assert err.name == "ResourceNotFoundError", (method, err)
    assert api.call("getHub", hubId=mine["id"])["name"] == mine["name"]
    # Its own hub belongs to its project, and the admin does not see it.
    theirs = other.call("createHub", name=unique("c20-theirs"))
    assert theirs["projectId"] == other.project_id, theirs
    assert theirs["organizationId"] == other.project_id
    assert api.error("getHub", hubId=theirs["id"]).name == "ResourceNotFoundError"
    assert api.call("listHubs", name=theirs["name"])["totalCount"] == 0
    # Nor can either put a device in the other's hub.
    err = other.error("createDevice", hubId=mine["id"], name=unique("c20-intruder"))
    assert err.name == "ResourceNotFoundError", err


# --- raw HTTP: what the SDK does not show ---------------------------------------------------------

def test_presence_events_extension_field(api):
    hub = api.new_hub(name=unique("c20-presence"))
    r = api.http("GET", "hubs/" + hub["id"])
    assert r.status == 200, r
    assert r.json["presence_events"] is True, r.json
    r = api.http("PATCH", "hubs/" + hub["id"], {"presence_events": False})
    assert r.status == 200, r
    assert r.json["presence_events"] is False, r.json
    assert api.http("GET", "hubs/" + hub["id"]).json["presence_events"] is False
    r = api.http("POST", "hubs", {"name": unique("c20-presence-off"), "presence_events": False})
    assert r.status == 200, r
    assert r.json["presence_events"] is False, r.json


def test_wire_format_of_a_hub(api):
    name = unique("c20-wire")
    r = api.http("POST", "hubs", {"name": name})
    assert r.status == 200, r
    assert r.headers.get("content-type", "").split(";")[0] == "application/json", r.headers
    hub = r.json
    for field in ("id", "name", "status", "product_plan", "enabled", "device_count",
                  "connected_device_count", "endpoint", "disable_events", "events_topic_prefix",
                  "region", "created_at", "updated_at", "project_id", "organization_id",
                  "enable_device_auto_provisioning", "has_custom_ca"):
        assert field in hub, "%s missing: %r" % (field, hub)
    listing = api.http("GET", "hubs", query={"name": name}).json
    assert listing["total_count"] == 1 and listing["hubs"][0]["id"] == hub["id"], listing


def test_server_generates_a_name_when_empty(api):
    # The SDK makes up a name itself when given none, so this goes around it.
    r = api.http("POST", "hubs", {})
    assert r.status == 200, r
    assert r.json["name"].startswith("hub-") and len(r.json["name"]) > 4, r.json
    r2 = api.http("POST", "hubs", {"name": ""})
    assert r2.status == 200, r2
    assert r2.json["name"].startswith("hub-") and r2.json["name"] != r.json["name"], r2.json


# --- persistence ----------------------------------------------------------------------------------

def test_hubs_devices_and_keys_survive_restart(tmp_path):
    srv = start_server(tmp_path / "restart")
    try:
        api = admin_api(srv)
        token = api.token
        hub = api.new_hub(name=unique("c20-persist"), productPlan="plan_dedicated",
                          eventsTopicPrefix="c20/persist")
        disabled = api.new_hub(name=unique("c20-persist-off"))
        api.disable_hub(disabled["id"])
        dev = api.new_device(hub["id"], description="kept", allowInsecure=True,
                             messageFilters={"publish": {"policy": "accept", "topics": ["a/#"]},
                                             "subscribe": {"policy": "reject", "topics": []}})
        key = create_api_key(srv.data_dir)
        theirs = api.as_key(key).new_hub(name=unique("c20-persist-theirs"))
        srv.restart()
        api = admin_api(srv)
        assert api.token == token, "the admin token changed across a restart"
        got = api.call("getHub", hubId=hub["id"])
        assert (got["name"], got["productPlan"], got["eventsTopicPrefix"], got["deviceCount"]) == (
            hub["name"], "plan_dedicated", "c20/persist", 1), got
        assert got["createdAt"] == hub["createdAt"]
        got = api.call("getHub", hubId=disabled["id"])
        assert got["status"] == "disabled" and got["enabled"] is False, got
        got = api.call("getDevice", deviceId=dev["id"])
        assert (got["name"], got["description"], got["allowInsecure"], got["hubId"]) == (
            dev["name"], "kept", True, hub["id"]), got
        assert got["messageFilters"] == dev["messageFilters"], got
        other = api.as_key(key)
        assert other.call("getHub", hubId=theirs["id"])["name"] == theirs["name"]
        assert api.error("getHub", hubId=theirs["id"]).name == "ResourceNotFoundError"
    finally:
        stop_server(srv)
