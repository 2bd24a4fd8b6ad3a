// The hub layer at CONNECT and after: identity from the registry, rules from the device and
// its hub's plan, hub events, presence, and registry changes acting on live connections.

#include <gtest/gtest.h>

#include "broker/connection_harness.hpp"
#include "hub/access.hpp"
#include "hub/access_fixture.hpp"
#include "store/registry_store.hpp"

namespace iothub::hub {
namespace {

using broker::testing::client;
using broker::testing::publishes;
using mqtt::protocol_version;

using testing::hub_fixture;

TEST(templates, expand_with_and_without_spaces) {
    hub_record h;
    h.id = "H";
    h.name = "MyHub";
    device_record d;
    d.id = "D";
    d.name = "MyDevice";
    EXPECT_EQ(expand_templates("/{{ hub.name }}/{{device.name}}/#", h, d), "/MyHub/MyDevice/#");
    EXPECT_EQ(expand_templates("{{hub.id}}-{{  device.id  }}", h, d), "H-D");
    EXPECT_EQ(expand_templates("a/{{other}}/b", h, d), "a/{{other}}/b");
    EXPECT_EQ(expand_templates("a/{{hub.id", h, d), "a/{{hub.id");
}

TEST(events, payload_is_json_with_the_documented_keys) {
    hub_event e;
    e.severity = "error";
    e.object_type = "device";
    e.object_id = "abc";
    e.msg = "unauthorized topic a/\"b\"";
    e.extra = {{"reason", "x"}};
    EXPECT_EQ(event_payload(e, 1579273289000),
              "{\"time\":\"2020-01-17T15:01:29Z\",\"severity\":\"error\",\"object-type\":\"device\","
              "\"object-id\":\"abc\",\"msg\":\"unauthorized topic a/\\\"b\\\"\",\"reason\":\"x\"}");
}

TEST_F(hub_fixture, device_connects_by_client_id_or_username) {
    auto d = make_device(hub.hub->id);
    client a(*b, protocol_version::v311);
    EXPECT_EQ(a.connect(d->id).reason, mqtt::reason_code::success);
    EXPECT_TRUE(acc->is_connected(d->id));
    EXPECT_EQ(acc->connected_devices(hub.hub->id), 1u);

    // By username: the username becomes the client id (a take-over of the first).
    client c(*b, protocol_version::v5);
    mqtt::connect p;
    p.version = protocol_version::v5;
    p.protocol_name = "MQTT";
    p.client_id = "short";
    p.clean_start = true;
    p.username = d->id;
    c.send(p);
    auto got = c.received();
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(std::get<mqtt::connack>(got[0]).reason, mqtt::reason_code::success);
    EXPECT_TRUE(a.t.closed);
}

TEST_F(hub_fixture, unknown_disabled_and_insecure_devices_are_refused_with_events) {
    auto w = watcher(hub.hub->id);
    client unknown(*b, protocol_version::v311);
    EXPECT_EQ(unknown.connect(make_uuid()).reason, mqtt::reason_code::not_authorized);

    auto secure_only = make_device(hub.hub->id, false);
    client c1(*b, protocol_version::v5);
    auto ack = c1.connect(secure_only->id);
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    EXPECT_EQ(ack.props.reason_string.value_or(""), "mutual TLS authentication is required");

    auto off = make_device(hub.hub->id);
    reg->disable_device(sc, off->id);
    client c2(*b, protocol_version::v311);
    EXPECT_EQ(c2.connect(off->id).reason, mqtt::reason_code::not_authorized);

    EXPECT_EQ(event_messages(w->received()),
              (std::vector<std::string>{"mutual TLS authentication is required", "device is not enabled"}));
}

TEST_F(hub_fixture, shared_plan_requires_a_clean_session_and_limits_qos_and_retain) {
    auto shared = make_hub(product_plan::plan_shared);
    auto w = watcher(shared.hub->id);
    auto d = make_device(shared.hub->id);
    client persistent(*b, protocol_version::v311);
    EXPECT_EQ(persistent.connect(d->id, false).reason, mqtt::reason_code::not_authorized);
    client c(*b, protocol_version::v311);
    ASSERT_EQ(c.connect(d->id, true).reason, mqtt::reason_code::success);
    c.publish("t", "x", 0, true);
    c.publish("t", "x", 2, false, 5);
    c.subscribe("t", 1, 6);
    EXPECT_EQ(event_messages(w->received()),
              (std::vector<std::string>{
                  "service level: \"clean session\" flag is mandatory to connect to a shared hub",
                  "device connected",
                  "service level: publishing retained messages is forbidden on a shared hub",
                  "service level: publishing QoS 2 messages is forbidden on a shared hub",
                  "service level: subscribing with QoS 1-2 is forbidden on a shared hub"}));
}

TEST_F(hub_fixture, filters_with_templates_and_a_live_change) {
    message_filters f;
    f.publish = {filter_policy::accept, {"devices/{{ device.name }}/#"}};
    auto d = make_device(hub.hub->id, true, f);
    auto w = watcher(hub.hub->id);
    client sub(*b, protocol_version::v311);
    auto sd = make_device(hub.hub->id);
    sub.connect(sd->id);
    sub.subscribe("devices/#", 0);
    sub.received();

    client c(*b, protocol_version::v311);
    ASSERT_EQ(c.connect(d->id).reason, mqtt::reason_code::success);
    c.publish("devices/" + d->name + "/temp", "1");
    c.publish("devices/someone-else/temp", "2");
    auto got = publishes(sub.received());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].topic, "devices/" + d->name + "/temp");
    EXPECT_EQ(event_messages(w->received()),
              (std::vector<std::string>{"device connected", "device connected",
                                        "unauthorized topic devices/someone-else/temp"}));

    device_update up;
    message_filters open;
    up.filters = open;
    reg->update_device(sc, d->id, up);
    c.publish("devices/someone-else/temp", "3");
    EXPECT_EQ(publishes(sub.received()).size(), 1u);
}

TEST_F(hub_fixture, devices_cannot_forge_hub_events) {
    auto w = watcher(hub.hub->id);
    auto d = make_device(hub.hub->id);
    client c(*b, protocol_version::v311);
    c.connect(d->id);
    w->received();
    c.publish("$SCW/events/error/device/x", "forged");
    auto msgs = event_messages(w->received());
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0], "unauthorized topic $SCW/events/error/device/x");
}

TEST_F(hub_fixture, disabling_or_deleting_a_connected_device_disconnects_it) {
    auto d1 = make_device(hub.hub->id);
    auto d2 = make_device(hub.hub->id);
    client a(*b, protocol_version::v5), c(*b, protocol_version::v311);
    a.connect(d1->id);
    c.connect(d2->id);
    reg->disable_device(sc, d1->id);
    EXPECT_TRUE(a.t.closed);
    auto got = a.received();
    ASSERT_FALSE(got.empty());
    const auto& dis = std::get<mqtt::disconnect>(got.back());
    EXPECT_EQ(dis.reason, mqtt::reason_code::not_authorized);
    EXPECT_EQ(dis.props.reason_string.value_or(""), "device is not enabled");
    EXPECT_FALSE(acc->is_connected(d1->id));
    reg->delete_device(sc, d2->id);
    EXPECT_TRUE(c.t.closed);
}

TEST_F(hub_fixture, turning_allow_insecure_off_disconnects_an_insecure_session) {
    auto d = make_device(hub.hub->id);
    client a(*b, protocol_version::v311);
    a.connect(d->id);
    device_update up;
    up.allow_insecure = false;
    reg->update_device(sc, d->id, up);
    EXPECT_TRUE(a.t.closed);
}

TEST_F(hub_fixture, disabling_a_hub_disconnects_its_devices_and_isolates_hubs) {
    auto other = make_hub(product_plan::plan_dedicated);
    auto d1 = make_device(hub.hub->id);
    auto d2 = make_device(other.hub->id);
    client a(*b, protocol_version::v311), c(*b, protocol_version::v311);
    a.connect(d1->id);
    c.connect(d2->id);
    reg->disable_hub(sc, hub.hub->id);
    EXPECT_TRUE(a.t.closed);
    EXPECT_FALSE(c.t.closed);
    client again(*b, protocol_version::v311);
    EXPECT_EQ(again.connect(d1->id).reason, mqtt::reason_code::not_authorized);
}

TEST_F(hub_fixture, presence_events_can_be_turned_off_and_events_disabled) {
    auto w = watcher(hub.hub->id);
    hub_update up;
    up.presence_events = false;
    reg->update_hub(sc, hub.hub->id, up);
    auto d = make_device(hub.hub->id);
    {
        client c(*b, protocol_version::v311);
        c.connect(d->id);
        c.publish("$SCW/events/x", "forged");
    }
    EXPECT_EQ(event_messages(w->received()),
              (std::vector<std::string>{"unauthorized topic $SCW/events/x"}));
    hub_update off;
    off.disable_events = true;
    reg->update_hub(sc, hub.hub->id, off);
    client c(*b, protocol_version::v311);
    c.connect(d->id);
    c.publish("$SCW/events/x", "forged");
    EXPECT_TRUE(event_messages(w->received()).empty());
}

TEST_F(hub_fixture, events_are_rate_limited_per_device) {
    auto w = watcher(hub.hub->id);
    message_filters f;
    f.publish = {filter_policy::accept, {"allowed"}};
    auto d = make_device(hub.hub->id, true, f);
    client c(*b, protocol_version::v311);
    c.connect(d->id);
    for (int i = 0; i < 200; ++i) c.publish("denied", "x");
    const auto n = event_messages(w->received()).size();
    EXPECT_LE(n, 25u);
    EXPECT_GE(n, 10u);
    EXPECT_GT(acc->events().suppressed_total(), 150u);
}

}  // namespace
}  // namespace iothub::hub
