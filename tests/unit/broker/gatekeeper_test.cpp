// Rules from a gatekeeper, enforced by the connection: hubs as separate topic spaces,
// publish / subscribe / will filters, plan limits, live rule changes and the reports the
// hub layer turns into events.

#include "connection_harness.hpp"

namespace iothub::broker {
namespace {

using namespace iothub::broker::testing;

TEST(topic_rule, empty_reject_list_allows_everything) {
    topic_rule r;
    EXPECT_TRUE(r.unrestricted());
    EXPECT_TRUE(r.allows("a/b"));
    EXPECT_TRUE(r.allows_filter("#"));
}

TEST(topic_rule, accept_list_allows_only_matching_topics) {
    topic_rule r{true, {"sensors/+/temp", "cmd/#"}};
    EXPECT_TRUE(r.allows("sensors/1/temp"));
    EXPECT_TRUE(r.allows("cmd"));
    EXPECT_TRUE(r.allows("cmd/x/y"));
    EXPECT_FALSE(r.allows("sensors/1/hum"));
    EXPECT_FALSE(r.allows("other"));
}

TEST(topic_rule, reject_list_refuses_matching_topics) {
    topic_rule r{false, {"secret/#"}};
    EXPECT_FALSE(r.allows("secret"));
    EXPECT_FALSE(r.allows("secret/a"));
    EXPECT_TRUE(r.allows("public/a"));
}

TEST(topic_rule, accept_list_allows_a_filter_only_when_covered) {
    topic_rule r{true, {"a/#", "b/+/c"}};
    EXPECT_TRUE(r.allows_filter("a/#"));
    EXPECT_TRUE(r.allows_filter("a/+/x"));
    EXPECT_TRUE(r.allows_filter("a"));
    EXPECT_TRUE(r.allows_filter("b/1/c"));
    EXPECT_TRUE(r.allows_filter("b/+/c"));
    EXPECT_FALSE(r.allows_filter("b/#"));
    EXPECT_FALSE(r.allows_filter("b/+/+"));
    EXPECT_FALSE(r.allows_filter("#"));
    EXPECT_FALSE(r.allows_filter("+/x"));
}

TEST(topic_rule, reject_list_refuses_a_filter_that_can_match_a_rejected_topic) {
    topic_rule r{false, {"secret/#", "x/+/y"}};
    EXPECT_FALSE(r.allows_filter("#"));
    EXPECT_FALSE(r.allows_filter("+/a"));
    EXPECT_FALSE(r.allows_filter("secret"));
    EXPECT_FALSE(r.allows_filter("x/1/+"));
    EXPECT_TRUE(r.allows_filter("public/#"));
    EXPECT_TRUE(r.allows_filter("x/1/z"));
    EXPECT_TRUE(r.allows_filter("x/1/y/z"));
}

// Admits "dev-*" client ids into hub "h1" and "other-*" into "h2", with the rules set on it;
// refuses the rest. Records what it is told.
struct recording_gatekeeper final : gatekeeper {
    client_identity rules;
    std::vector<std::pair<refusal, std::string>> refusals;
    std::vector<std::string> connects, disconnects, errors;

    admission admit(worker&, const mqtt::connect& c, const link_info&) override {
        admission a;
        if (c.client_id.rfind("dev-", 0) == 0 || c.client_id.rfind("other-", 0) == 0) {
            auto id = std::make_shared<client_identity>(rules);
            id->hub = c.client_id[0] == 'd' ? "h1" : "h2";
            id->device_id = c.client_id;
            a.hub = id->hub;
            a.client_id = c.client_id;
            a.identity = id;
            return a;
        }
        a.rc = mqtt::reason_code::not_authorized;
        a.reason = "unknown device";
        return a;
    }
    void refused(worker&, const client_identity&, refusal r, std::string_view topic) override {
        refusals.emplace_back(r, std::string(topic));
    }
    void connected(worker&, const client_identity& id, std::string_view, std::string_view) override {
        connects.push_back(id.device_id);
    }
    void disconnected(worker&, const client_identity& id, std::string_view,
                      std::string_view reason) override {
        disconnects.push_back(id.device_id + ":" + std::string(reason));
    }
    void protocol_error(worker&, const client_identity& id, std::string_view text) override {
        errors.push_back(id.device_id + ":" + std::string(text));
    }
};

struct gated : fixture {
    recording_gatekeeper gk;
    void SetUp() override {
        fixture::SetUp();
        b->set_gatekeeper(&gk);
    }
    void TearDown() override { b->set_gatekeeper(nullptr); }
};

TEST_F(gated, unknown_client_is_refused_with_not_authorized) {
    client a(*b, protocol_version::v311);
    EXPECT_EQ(a.connect("stranger").reason, mqtt::reason_code::not_authorized);
    EXPECT_TRUE(a.t.closed);
    client v5(*b, protocol_version::v5);
    auto ack = v5.connect("stranger");
    EXPECT_EQ(ack.reason, mqtt::reason_code::not_authorized);
    EXPECT_EQ(ack.props.reason_string.value_or(""), "unknown device");
}

TEST_F(gated, hubs_are_separate_topic_spaces) {
    client sub1(*b, protocol_version::v311), sub2(*b, protocol_version::v311),
        pub(*b, protocol_version::v311);
    ASSERT_EQ(sub1.connect("dev-sub").reason, mqtt::reason_code::success);
    ASSERT_EQ(sub2.connect("other-sub").reason, mqtt::reason_code::success);
    ASSERT_EQ(pub.connect("dev-pub").reason, mqtt::reason_code::success);
    sub1.subscribe("#", 0);
    sub2.subscribe("#", 0);
    sub1.received();
    sub2.received();
    pub.publish("t", "hello");
    EXPECT_EQ(publishes(sub1.received()).size(), 1u);
    EXPECT_TRUE(publishes(sub2.received()).empty());
    EXPECT_EQ(gk.connects, (std::vector<std::string>{"dev-sub", "other-sub", "dev-pub"}));
}

TEST_F(gated, refused_publish_is_not_delivered_and_is_reported) {
    gk.rules.publish = {true, {"allowed/#"}};
    client sub(*b, protocol_version::v311), p3(*b, protocol_version::v311), p5(*b, protocol_version::v5);
    sub.connect("dev-sub");
    p3.connect("dev-p3");
    p5.connect("dev-p5");
    sub.subscribe("#", 1);
    sub.received();
    p3.publish("denied/x", "a", 1, false, 7);
    auto acks = p3.received();
    ASSERT_EQ(acks.size(), 1u);  // 3.1.1: acknowledged, dropped
    EXPECT_EQ(std::get<mqtt::ack>(acks[0]).reason, mqtt::reason_code::success);
    p5.publish("denied/y", "b", 1, false, 8);
    acks = p5.received();
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(std::get<mqtt::ack>(acks[0]).reason, mqtt::reason_code::not_authorized);
    p3.publish("allowed/z", "c", 0);
    auto got = publishes(sub.received());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].topic, "allowed/z");
    ASSERT_EQ(gk.refusals.size(), 2u);
    EXPECT_EQ(gk.refusals[0], std::make_pair(refusal::publish_topic, std::string("denied/x")));
}

TEST_F(gated, reserved_topics_cannot_be_published_even_when_accepted) {
    gk.rules.publish = {true, {"#"}};
    gk.rules.reserved = {false, {"$SCW/events/#"}};
    client sub(*b, protocol_version::v311), p(*b, protocol_version::v311);
    sub.connect("dev-sub");
    p.connect("dev-p");
    sub.subscribe("$SCW/events/#", 0);
    sub.received();
    p.publish("$SCW/events/error/device/x", "fake");
    EXPECT_TRUE(publishes(sub.received()).empty());
    EXPECT_EQ(gk.refusals.size(), 1u);
}

TEST_F(gated, refused_subscribe_gets_a_failure_code) {
    gk.rules.subscribe = {false, {"secret/#"}};
    client a(*b, protocol_version::v311), c(*b, protocol_version::v5);
    a.connect("dev-a");
    c.connect("dev-c");
    a.subscribe("#", 0);
    auto got = a.received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(std::get<mqtt::suback>(got[0]).reasons.at(0), mqtt::reason_code::unspecified_error);
    c.subscribe("secret/x", 0);
    got = c.received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(std::get<mqtt::suback>(got[0]).reasons.at(0), mqtt::reason_code::not_authorized);
    c.subscribe("public/#", 1, 2);
    got = c.received();
    EXPECT_EQ(std::get<mqtt::suback>(got.at(0)).reasons.at(0), mqtt::reason_code::granted_qos_1);
    EXPECT_EQ(gk.refusals.size(), 2u);
}

TEST_F(gated, plan_limits_refuse_retain_qos2_and_subscribe_qos) {
    gk.rules.retain_allowed = false;
    gk.rules.max_publish_qos = 1;
    gk.rules.max_subscribe_qos = 0;
    client sub(*b, protocol_version::v311), p(*b, protocol_version::v5);
    sub.connect("dev-sub");
    p.connect("dev-p");
    sub.subscribe("t/#", 1);
    EXPECT_EQ(std::get<mqtt::suback>(sub.received().at(0)).reasons.at(0),
              mqtt::reason_code::unspecified_error);
    sub.subscribe("t/#", 0, 2);
    sub.received();
    p.publish("t/r", "x", 1, true, 3);
    EXPECT_EQ(std::get<mqtt::ack>(p.received().at(0)).reason, mqtt::reason_code::not_authorized);
    p.publish("t/q", "x", 2, false, 4);
    EXPECT_EQ(std::get<mqtt::ack>(p.received().at(0)).reason, mqtt::reason_code::not_authorized);
    EXPECT_TRUE(publishes(sub.received()).empty());
    p.publish("t/ok", "x", 1, false, 5);
    EXPECT_EQ(publishes(sub.received()).size(), 1u);
    ASSERT_EQ(gk.refusals.size(), 3u);
    EXPECT_EQ(gk.refusals[0].first, refusal::subscribe_qos);
    EXPECT_EQ(gk.refusals[1].first, refusal::retain_forbidden);
    EXPECT_EQ(gk.refusals[2].first, refusal::publish_qos);
}

TEST_F(gated, a_will_the_filters_refuse_refuses_the_connection) {
    gk.rules.publish = {false, {"forbidden/#"}};
    client a(*b, protocol_version::v311);
    mqtt::will_message w;
    w.topic = "forbidden/will";
    w.payload = "bye";
    EXPECT_EQ(a.connect("dev-a", true, 0, w).reason, mqtt::reason_code::not_authorized);
    ASSERT_EQ(gk.refusals.size(), 1u);
    EXPECT_EQ(gk.refusals[0].first, refusal::will_topic);
}

TEST_F(gated, new_rules_apply_to_a_live_connection) {
    client sub(*b, protocol_version::v311), p(*b, protocol_version::v311);
    sub.connect("dev-sub");
    p.connect("dev-p");
    sub.subscribe("a/#", 0);
    sub.subscribe("b/#", 0, 2);
    sub.received();
    // The subscriber may now only subscribe under a/; the publisher may not publish c/.
    auto sub_rules = std::make_shared<client_identity>(*sub.c->identity());
    sub_rules->subscribe = {true, {"a/#"}};
    sub.c->set_identity(sub_rules);
    auto pub_rules = std::make_shared<client_identity>(*p.c->identity());
    pub_rules->publish = {false, {"c/#"}};
    p.c->set_identity(pub_rules);
    p.publish("a/1", "x");
    p.publish("b/1", "x");
    p.publish("c/1", "x");
    auto got = publishes(sub.received());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].topic, "a/1");
}

TEST_F(gated, presence_and_protocol_errors_are_reported) {
    client a(*b, protocol_version::v311);
    a.connect("dev-a");
    a.send_raw(std::string("\xF0\x00", 2));  // reserved packet type
    EXPECT_TRUE(a.t.closed);
    ASSERT_EQ(gk.errors.size(), 1u);
    EXPECT_EQ(gk.errors[0].rfind("dev-a:", 0), 0u);
    ASSERT_EQ(gk.disconnects.size(), 1u);
    EXPECT_EQ(gk.disconnects[0].rfind("dev-a:", 0), 0u);
}

TEST_F(gated, an_oversized_packet_is_reported_as_a_service_level_refusal) {
    lim.max_packet_size = 128;
    make();
    b->set_gatekeeper(&gk);
    client a(*b, protocol_version::v311);
    ASSERT_EQ(a.connect("dev-a").reason, mqtt::reason_code::success);
    a.publish("t", std::string(200, 'x'));
    EXPECT_TRUE(a.t.closed);
    ASSERT_EQ(gk.refusals.size(), 1u);
    EXPECT_EQ(gk.refusals[0].first, refusal::payload_too_large);
    EXPECT_TRUE(gk.errors.empty());
}

}  // namespace
}  // namespace iothub::broker
