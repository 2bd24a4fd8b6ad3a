#include "api/json_mapping.hpp"

#include <gtest/gtest.h>

#include <string>

#include "hub/registry.hpp"

namespace iothub::api {
namespace {

using nlohmann::json;

const resource_context ctx{"fr-par", "iot.example.net"};

// The details of the invalid_arguments error `fn` throws.
template <typename F>
std::vector<hub::argument_error> details_of(F&& fn) {
    try {
        fn();
    } catch (const hub::registry_error& e) {
        EXPECT_EQ(e.kind, hub::error_kind::invalid_arguments);
        return e.details;
    }
    ADD_FAILURE() << "no registry_error thrown";
    return {};
}

bool names(const std::vector<hub::argument_error>& d, const std::string& arg,
           const std::string& reason = "format") {
    for (const auto& e : d) {
        if (e.argument_name == arg && e.reason == reason && !e.help_message.empty()) return true;
    }
    return false;
}

TEST(FormatTime, Rfc3339UtcWithMilliseconds) {
    EXPECT_EQ(format_time(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_time(1737627984158), "2025-01-23T10:26:24.158Z");
    EXPECT_EQ(format_time(1737627984005), "2025-01-23T10:26:24.005Z");
    EXPECT_EQ(format_time(951782400000), "2000-02-29T00:00:00.000Z");
}

hub::hub_view sample_hub() {
    auto h = std::make_shared<hub::hub_record>();
    h->id = "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11";
    h->name = "minimal";
    h->project_id = "0e5c6f4a-8a7b-4c6d-9e1f-2a3b4c5d6e7f";
    h->organization_id = h->project_id;
    h->plan = hub::product_plan::plan_dedicated;
    h->created_at_ms = 1737627984158;
    h->updated_at_ms = 1737627985000;
    hub::hub_view v;
    v.hub = h;
    v.status = hub::hub_status::enabling;
    v.device_count = 3;
    v.connected_device_count = 1;
    return v;
}

TEST(HubToJson, EveryFieldOfTheSdk) {
    const json j = hub_to_json(sample_hub(), ctx);
    EXPECT_EQ(j.at("id"), "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11");
    EXPECT_EQ(j.at("name"), "minimal");
    EXPECT_EQ(j.at("status"), "enabling");
    EXPECT_EQ(j.at("product_plan"), "plan_dedicated");
    EXPECT_EQ(j.at("enabled"), true);
    EXPECT_EQ(j.at("device_count"), 3);
    EXPECT_EQ(j.at("connected_device_count"), 1);
    EXPECT_EQ(j.at("endpoint"), "iot.example.net");
    EXPECT_EQ(j.at("disable_events"), false);
    EXPECT_EQ(j.at("events_topic_prefix"), "$SCW/events");
    EXPECT_EQ(j.at("region"), "fr-par");
    EXPECT_EQ(j.at("created_at"), "2025-01-23T10:26:24.158Z");
    EXPECT_EQ(j.at("updated_at"), "2025-01-23T10:26:25.000Z");
    EXPECT_EQ(j.at("project_id"), "0e5c6f4a-8a7b-4c6d-9e1f-2a3b4c5d6e7f");
    EXPECT_EQ(j.at("organization_id"), "0e5c6f4a-8a7b-4c6d-9e1f-2a3b4c5d6e7f");
    EXPECT_EQ(j.at("enable_device_auto_provisioning"), false);
    EXPECT_EQ(j.at("has_custom_ca"), false);
    EXPECT_EQ(j.at("presence_events"), true);
    EXPECT_FALSE(j.contains("twins_graphite_config"));
    EXPECT_EQ(j.size(), 18u);
}

TEST(HubToJson, GraphiteConfigOnlyWhenSet) {
    auto v = sample_hub();
    auto h = std::make_shared<hub::hub_record>(*v.hub);
    h->twins_graphite_push_uri = "tcp://graphite:2003";
    v.hub = h;
    const json j = hub_to_json(v, ctx);
    EXPECT_EQ(j.at("twins_graphite_config"), (json{{"push_uri", "tcp://graphite:2003"}}));
}

hub::device_view sample_device() {
    auto d = std::make_shared<hub::device_record>();
    d->id = "c0ffee00-1111-4222-8333-444455556666";
    d->hub_id = "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11";
    d->name = "thermo";
    d->description = "attic";
    d->allow_insecure = true;
    d->filters.publish = {hub::filter_policy::accept, {"a/#", "b/+"}};
    d->created_at_ms = 1737627984158;
    d->updated_at_ms = 1737627984158;
    hub::device_view v;
    v.device = d;
    return v;
}

TEST(DeviceToJson, EveryFieldOfTheSdk) {
    const json j = device_to_json(sample_device(), ctx);
    EXPECT_EQ(j.at("id"), "c0ffee00-1111-4222-8333-444455556666");
    EXPECT_EQ(j.at("name"), "thermo");
    EXPECT_EQ(j.at("description"), "attic");
    EXPECT_EQ(j.at("status"), "enabled");
    EXPECT_EQ(j.at("hub_id"), "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11");
    EXPECT_EQ(j.at("last_activity_at"), "1970-01-01T00:00:00Z");
    EXPECT_EQ(j.at("is_connected"), false);
    EXPECT_EQ(j.at("allow_insecure"), true);
    EXPECT_EQ(j.at("allow_multiple_connections"), false);
    EXPECT_EQ(j.at("message_filters"),
              json::parse(R"({"publish":{"policy":"accept","topics":["a/#","b/+"]},
                              "subscribe":{"policy":"reject","topics":[]}})"));
    EXPECT_EQ(j.at("has_custom_certificate"), false);
    EXPECT_EQ(j.at("created_at"), "2025-01-23T10:26:24.158Z");
    EXPECT_EQ(j.at("updated_at"), "2025-01-23T10:26:24.158Z");
    EXPECT_EQ(j.at("region"), "fr-par");
    EXPECT_EQ(j.size(), 14u);
}

TEST(DeviceToJson, LiveFieldsAndDisabled) {
    auto v = sample_device();
    auto d = std::make_shared<hub::device_record>(*v.device);
    d->enabled = false;
    v.device = d;
    v.is_connected = true;
    v.last_activity_at_ms = 1737627999001;
    const json j = device_to_json(v, ctx);
    EXPECT_EQ(j.at("status"), "disabled");
    EXPECT_EQ(j.at("is_connected"), true);
    EXPECT_EQ(j.at("last_activity_at"), "2025-01-23T10:26:39.001Z");
}

TEST(ParseBody, EmptyIsAnEmptyObject) {
    EXPECT_EQ(parse_body(""), json::object());
    EXPECT_EQ(parse_body(" \r\n\t"), json::object());
    EXPECT_EQ(parse_body("{}"), json::object());
}

TEST(ParseBody, MalformedJsonNamesTheBody) {
    for (const char* bad : {"{", "{\"name\":", "nope", "{\"a\":1}}", "{\"a\":\"\xff\"}"}) {
        const auto d = details_of([&] { parse_body(bad); });
        ASSERT_EQ(d.size(), 1u) << bad;
        EXPECT_EQ(d[0].argument_name, "body");
        EXPECT_EQ(d[0].reason, "format");
        EXPECT_NE(d[0].help_message.find("not valid JSON"), std::string::npos) << d[0].help_message;
    }
}

TEST(ParseBody, OnlyAnObjectWillDo) {
    for (const char* bad : {"[]", "5", "\"x\"", "null", "true"}) {
        const auto d = details_of([&] { parse_body(bad); });
        ASSERT_EQ(d.size(), 1u) << bad;
        EXPECT_EQ(d[0].argument_name, "body");
    }
}

TEST(ParseBody, DeepNestingIsRefusedBeforeParsing) {
    const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
    const auto d = details_of([&] { parse_body(deep); });
    ASSERT_EQ(d.size(), 1u);
    EXPECT_NE(d[0].help_message.find("nested"), std::string::npos);
    // Brackets inside strings do not count.
    EXPECT_NO_THROW(parse_body("{\"a\":\"" + std::string(1000, '[') + "\"}"));
}

TEST(ParseHubCreate, AllFields) {
    const auto req = parse_hub_create(json::parse(R"({
        "name": "h", "project_id": "0e5c6f4a-8a7b-4c6d-9e1f-2a3b4c5d6e7f",
        "product_plan": "plan_ha", "disable_events": true, "events_topic_prefix": "p/e",
        "presence_events": false, "twins_graphite_config": {"push_uri": "tcp://g:2003"},
        "some_future_field": {"x": 1}})"));
    EXPECT_EQ(req.name, "h");
    EXPECT_EQ(req.project_id, "0e5c6f4a-8a7b-4c6d-9e1f-2a3b4c5d6e7f");
    EXPECT_EQ(req.plan, hub::product_plan::plan_ha);
    EXPECT_EQ(req.disable_events, true);
    EXPECT_EQ(req.events_topic_prefix, "p/e");
    EXPECT_EQ(req.presence_events, false);
    EXPECT_EQ(req.twins_graphite_push_uri, "tcp://g:2003");
}

TEST(ParseHubCreate, NothingGivenLeavesDefaults) {
    const auto req = parse_hub_create(json::object());
    EXPECT_EQ(req.name, "");
    EXPECT_EQ(req.project_id, "");
    EXPECT_EQ(req.plan, hub::product_plan::plan_unknown);
    EXPECT_FALSE(req.disable_events);
    EXPECT_FALSE(req.events_topic_prefix);
    EXPECT_FALSE(req.presence_events);
    EXPECT_FALSE(req.twins_graphite_push_uri);
}

TEST(ParseHubCreate, NullIsAbsent) {
    const auto req = parse_hub_create(
        json::parse(R"({"name": null, "disable_events": null, "twins_graphite_config": null})"));
    EXPECT_EQ(req.name, "");
    EXPECT_FALSE(req.disable_events);
    EXPECT_FALSE(req.twins_graphite_push_uri);
}

TEST(ParseHubCreate, WrongTypesNameEveryField) {
    const auto d = details_of([] {
        parse_hub_create(json::parse(R"({"name": 5, "disable_events": "yes",
            "product_plan": "plan_gold", "project_id": "not-a-uuid", "events_topic_prefix": [],
            "presence_events": 1, "twins_graphite_config": {"push_uri": 3}})"));
    });
    EXPECT_EQ(d.size(), 7u);
    EXPECT_TRUE(names(d, "name"));
    EXPECT_TRUE(names(d, "disable_events"));
    EXPECT_TRUE(names(d, "product_plan"));
    EXPECT_TRUE(names(d, "project_id"));
    EXPECT_TRUE(names(d, "events_topic_prefix"));
    EXPECT_TRUE(names(d, "presence_events"));
    EXPECT_TRUE(names(d, "twins_graphite_config.push_uri"));
}

TEST(ParseHubUpdate, OnlyWhatIsGiven) {
    const auto req = parse_hub_update(json::parse(R"({"disable_events": false})"));
    EXPECT_FALSE(req.name);
    EXPECT_FALSE(req.plan);
    EXPECT_EQ(req.disable_events, false);
    EXPECT_FALSE(req.events_topic_prefix);
    EXPECT_FALSE(req.enable_device_auto_provisioning);
    EXPECT_FALSE(req.presence_events);
}

TEST(ParseHubUpdate, PlanUnknownMeansUnchanged) {
    EXPECT_FALSE(parse_hub_update(json::parse(R"({"product_plan": "plan_unknown"})")).plan);
    EXPECT_EQ(parse_hub_update(json::parse(R"({"product_plan": "plan_shared"})")).plan,
              hub::product_plan::plan_shared);
}

TEST(ParseHubUpdate, WrongTypes) {
    const auto d = details_of([] {
        parse_hub_update(json::parse(
            R"({"enable_device_auto_provisioning": "on", "twins_graphite_config": "x"})"));
    });
    EXPECT_EQ(d.size(), 2u);
    EXPECT_TRUE(names(d, "enable_device_auto_provisioning"));
    EXPECT_TRUE(names(d, "twins_graphite_config"));
}

TEST(ParseDeviceCreate, AllFields) {
    const auto req = parse_device_create(json::parse(R"({
        "hub_id": "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11", "name": "d", "description": "x",
        "allow_insecure": true, "allow_multiple_connections": true,
        "message_filters": {"publish": {"policy": "accept", "topics": ["a/#"]}}})"));
    EXPECT_EQ(req.hub_id, "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11");
    EXPECT_EQ(req.name, "d");
    EXPECT_EQ(req.description, "x");
    EXPECT_TRUE(req.allow_insecure);
    EXPECT_TRUE(req.allow_multiple_connections);
    ASSERT_TRUE(req.filters);
    EXPECT_EQ(req.filters->publish, (hub::filter_rule{hub::filter_policy::accept, {"a/#"}}));
    // The rule left out keeps the default: everything allowed.
    EXPECT_EQ(req.filters->subscribe, (hub::filter_rule{hub::filter_policy::reject, {}}));
}

TEST(ParseDeviceCreate, HubIsRequired) {
    for (const char* body : {"{}", R"({"hub_id": null})", R"({"hub_id": ""})"}) {
        const auto d = details_of([&] { parse_device_create(json::parse(body)); });
        EXPECT_TRUE(names(d, "hub_id", "required")) << body;
    }
    const auto d =
        details_of([] { parse_device_create(json::parse(R"({"hub_id": "6a1cf2c6"})")); });
    EXPECT_TRUE(names(d, "hub_id", "format"));
}

TEST(ParseDeviceCreate, WrongTypes) {
    const auto d = details_of([] {
        parse_device_create(json::parse(R"({"hub_id": "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11",
            "allow_insecure": "yes", "allow_multiple_connections": 0, "name": false,
            "description": {}, "message_filters": {"publish": {"policy": "maybe",
            "topics": "a/#"}, "subscribe": {"topics": ["ok", 5]}}})"));
    });
    EXPECT_TRUE(names(d, "allow_insecure"));
    EXPECT_TRUE(names(d, "allow_multiple_connections"));
    EXPECT_TRUE(names(d, "name"));
    EXPECT_TRUE(names(d, "description"));
    EXPECT_TRUE(names(d, "message_filters.publish.policy"));
    EXPECT_TRUE(names(d, "message_filters.publish.topics"));
    EXPECT_TRUE(names(d, "message_filters.subscribe.topics"));
    EXPECT_EQ(d.size(), 7u);
}

TEST(ParseDeviceCreate, FiltersMustBeObjects) {
    auto d = details_of([] {
        parse_device_create(json::parse(
            R"({"hub_id": "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11", "message_filters": []})"));
    });
    EXPECT_TRUE(names(d, "message_filters"));
    d = details_of([] {
        parse_device_create(json::parse(R"({"hub_id": "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11",
            "message_filters": {"publish": "accept"}})"));
    });
    EXPECT_TRUE(names(d, "message_filters.publish"));
}

TEST(ParseDeviceUpdate, RulesLeftOutKeepTheirValue) {
    hub::message_filters current;
    current.publish = {hub::filter_policy::accept, {"p/#"}};
    current.subscribe = {hub::filter_policy::reject, {"s/secret"}};
    auto req = parse_device_update(
        json::parse(R"({"message_filters": {"subscribe": {"topics": []}}})"), current);
    ASSERT_TRUE(req.filters);
    EXPECT_EQ(req.filters->publish, current.publish);
    EXPECT_EQ(req.filters->subscribe, (hub::filter_rule{hub::filter_policy::reject, {}}));
    EXPECT_FALSE(req.description);
    EXPECT_FALSE(req.allow_insecure);
    EXPECT_FALSE(req.hub_id);

    req = parse_device_update(json::parse(R"({"allow_insecure": false,
        "hub_id": "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11", "name": "ignored"})"),
                              current);
    EXPECT_FALSE(req.filters);
    EXPECT_EQ(req.allow_insecure, false);
    EXPECT_EQ(req.hub_id, "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11");
}

TEST(ParseDeviceUpdate, WrongTypes) {
    const auto d = details_of([] {
        parse_device_update(json::parse(R"({"allow_insecure": "no", "hub_id": 7})"),
                            hub::message_filters{});
    });
    EXPECT_TRUE(names(d, "allow_insecure"));
    EXPECT_TRUE(names(d, "hub_id"));
}

}  // namespace
}  // namespace iothub::api
