// Device operations of the registry and the message filter checks.

#include <gtest/gtest.h>

#include "hub/registry.hpp"
#include "hub/registry_fixture.hpp"

namespace iothub::hub {
namespace {

using testing::details_of;
using testing::error_of;
using testing::mine;
using testing::names;
using testing::registry_test;
using testing::theirs;

filter_rule rule(filter_policy p, std::vector<std::string> topics) {
    return {p, std::move(topics)};
}

TEST_F(registry_test, create_device_fills_in_the_defaults) {
    const auto hub = make_hub().hub->id;
    device_create req;
    req.hub_id = hub;
    req.name = "sensor-1";
    req.description = "on the roof";
    req.allow_insecure = true;
    const device_view v = reg_.create_device(mine, req);
    ASSERT_TRUE(v.device);
    EXPECT_TRUE(is_uuid(v.device->id));
    EXPECT_EQ(v.device->hub_id, hub);
    EXPECT_EQ(v.device->name, "sensor-1");
    EXPECT_EQ(v.device->description, "on the roof");
    EXPECT_TRUE(v.device->enabled);
    EXPECT_TRUE(v.device->allow_insecure);
    EXPECT_FALSE(v.device->allow_multiple_connections);
    EXPECT_FALSE(v.device->has_custom_certificate);
    // Default filters: reject nothing, both ways.
    EXPECT_EQ(v.device->filters.publish, rule(filter_policy::reject, {}));
    EXPECT_EQ(v.device->filters.subscribe, rule(filter_policy::reject, {}));
    EXPECT_EQ(v.device->created_at_ms, now_);
    EXPECT_EQ(v.device->updated_at_ms, now_);
    EXPECT_FALSE(v.is_connected);
    EXPECT_EQ(v.last_activity_at_ms, 0u);

    EXPECT_EQ(reg_.find_device(v.device->id), v.device);
    EXPECT_EQ(reg_.find_device_by_name(hub, "sensor-1"), v.device);
    EXPECT_EQ(reg_.devices_of(hub), std::vector<device_ptr>{v.device});
    EXPECT_EQ(reg_.get_device(mine, v.device->id).device, v.device);
}

TEST_F(registry_test, create_device_without_a_name_gets_a_random_one) {
    const auto hub = make_hub().hub->id;
    const auto a = make_device(hub).device;
    const auto b = make_device(hub).device;
    EXPECT_TRUE(a->name.starts_with("device-")) << a->name;
    EXPECT_NE(a->name, b->name);
    EXPECT_EQ(a->name.find_first_of("/+#"), std::string::npos);
}

TEST_F(registry_test, device_names_are_unique_in_their_hub) {
    const auto h1 = make_hub("one").hub->id;
    const auto h2 = make_hub("two").hub->id;
    make_device(h1, "twin");
    const auto e = error_of([&] { make_device(h1, "twin"); });
    EXPECT_EQ(e.kind, error_kind::already_exists);
    EXPECT_EQ(e.resource, "device");
    EXPECT_EQ(e.resource_id, "twin");
    EXPECT_EQ(make_device(h2, "twin").device->hub_id, h2);
    EXPECT_EQ(reg_.devices_of(h1).size(), 1u);
}

TEST_F(registry_test, device_names_are_checked) {
    const auto hub = make_hub().hub->id;
    for (const std::string& bad :
         std::vector<std::string>{"a/b", "a+", "#", "tab\t", std::string(256, 'n')}) {
        const auto e = error_of([&] { make_device(hub, bad); });
        EXPECT_EQ(e.kind, error_kind::invalid_arguments) << bad;
        EXPECT_EQ(details_of(e), names("name:constraint")) << bad;
    }
    EXPECT_EQ(make_device(hub, std::string(255, 'n')).device->name.size(), 255u);
    EXPECT_EQ(make_device(hub, "with space.and-dots").device->name, "with space.and-dots");
}

TEST_F(registry_test, create_device_needs_a_hub_in_scope) {
    const auto theirs_hub = make_hub("x", product_plan::plan_dedicated, theirs).hub->id;
    for (const std::string& hub : {theirs_hub, std::string("absent")}) {
        const auto e = error_of([&] { make_device(hub); });
        EXPECT_EQ(e.kind, error_kind::not_found);
        EXPECT_EQ(e.resource, "hub");
        EXPECT_EQ(e.resource_id, hub);
    }
    EXPECT_EQ(details_of(error_of([&] { make_device(""); })), names("hub_id:required"));
}

TEST_F(registry_test, multiple_connections_are_not_available_on_plan_shared) {
    const auto shared = make_hub("s", product_plan::plan_shared).hub->id;
    device_create req;
    req.hub_id = shared;
    req.allow_multiple_connections = true;
    const auto e = error_of([&] { reg_.create_device(mine, req); });
    EXPECT_EQ(e.kind, error_kind::invalid_arguments);
    ASSERT_EQ(e.details.size(), 1u);
    EXPECT_EQ(e.details[0].argument_name, "allow_multiple_connections");
    EXPECT_EQ(e.details[0].reason, "constraint");
    EXPECT_EQ(e.details[0].help_message, "not available on plan_shared hubs");

    req.hub_id = make_hub("d", product_plan::plan_dedicated).hub->id;
    EXPECT_TRUE(reg_.create_device(mine, req).device->allow_multiple_connections);
}

class small_device_quota_test : public registry_test {
protected:
    small_device_quota_test() : registry_test(registry_limits{2, 50}) {}
};

TEST_F(small_device_quota_test, devices_per_hub_are_limited) {
    const auto h1 = make_hub("one").hub->id;
    const auto h2 = make_hub("two").hub->id;
    make_device(h1);
    make_device(h1);
    const auto e = error_of([&] { make_device(h1); });
    EXPECT_EQ(e.kind, error_kind::quotas_exceeded);
    EXPECT_EQ(e.resource, "device");
    // Moving a device into a full hub is refused the same way.
    const auto d = make_device(h2).device->id;
    device_update move;
    move.hub_id = h1;
    EXPECT_EQ(error_of([&] { reg_.update_device(mine, d, move); }).kind,
              error_kind::quotas_exceeded);
}

// --- Message filters

TEST_F(registry_test, filters_are_stored_as_given) {
    const auto hub = make_hub().hub->id;
    device_create req;
    req.hub_id = hub;
    req.filters = message_filters{rule(filter_policy::accept, {"{{ device.id }}/#", "a/+/b"}),
                                  rule(filter_policy::reject, {"$SYS/#"})};
    const auto d = reg_.create_device(mine, req).device;
    EXPECT_EQ(d->filters, *req.filters);
}

TEST_F(registry_test, unknown_policy_is_refused_unless_the_rule_is_empty) {
    const auto hub = make_hub().hub->id;
    device_create req;
    req.hub_id = hub;
    req.filters =
        message_filters{rule(filter_policy::unknown, {}), rule(filter_policy::unknown, {"a"})};
    const auto e = error_of([&] { reg_.create_device(mine, req); });
    EXPECT_EQ(details_of(e), names("message_filters.subscribe.policy:format"));

    req.filters->subscribe.topics.clear();
    const auto d = reg_.create_device(mine, req).device;
    EXPECT_EQ(d->filters.publish, rule(filter_policy::reject, {}));
    EXPECT_EQ(d->filters.subscribe, rule(filter_policy::reject, {}));
}

TEST(check_filters, names_each_bad_topic) {
    message_filters f{rule(filter_policy::accept, {"ok/+", "", "a/#/b", std::string(65536, 'x')}),
                      rule(filter_policy::reject, {"x", "{{ hub.nope }}", "{{ hub.id"})};
    EXPECT_EQ(details_of(registry::check_filters(f, "message_filters")),
              names("message_filters.publish.topics[1]:required",
                    "message_filters.publish.topics[2]:format",
                    "message_filters.publish.topics[3]:constraint",
                    "message_filters.subscribe.topics[1]:format",
                    "message_filters.subscribe.topics[2]:format"));
}

TEST(check_filters, accepts_templates_and_filters) {
    const std::vector<std::string> good = {
        "{{hub.id}}/{{hub.name}}/{{device.id}}/{{device.name}}",
        "{{ device.name }}/#",
        "/{{  hub.name  }}/{{device.name}}/#",
        "prefix-{{device.id}}-suffix/+",
        "#",
        "+/+",
        "$SCW/events/#",
        std::string(65535, 'x'),
        "a/}}/b",  // a closing brace pair alone is plain text
    };
    for (const auto& topic : good) {
        message_filters f{rule(filter_policy::accept, {topic}), rule(filter_policy::reject, {})};
        EXPECT_TRUE(registry::check_filters(f, "message_filters").empty()) << topic;
    }
    const std::vector<std::string> bad = {
        "{{device.id}}#", "a#", "{{}}", "{{ device.id }", "a/+b", std::string("a\0b", 3), "\xc3"};
    for (const auto& topic : bad) {
        message_filters f{rule(filter_policy::accept, {topic}), rule(filter_policy::reject, {})};
        EXPECT_EQ(details_of(registry::check_filters(f, "message_filters")),
                  names("message_filters.publish.topics[0]:format"))
            << topic;
    }
}

TEST(check_filters, uses_the_field_name_given) {
    message_filters f{rule(filter_policy::accept, {""}), rule(filter_policy::reject, {})};
    const auto errors = registry::check_filters(f, "filters");
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].argument_name, "filters.publish.topics[0]");
    EXPECT_FALSE(errors[0].help_message.empty());
}

TEST_F(registry_test, bad_filters_refuse_create_and_update) {
    const auto hub = make_hub().hub->id;
    device_create req;
    req.hub_id = hub;
    req.name = "bad/name";
    req.filters = message_filters{rule(filter_policy::accept, {"a/#/b"}), {}};
    EXPECT_EQ(details_of(error_of([&] { reg_.create_device(mine, req); })),
              names("name:constraint", "message_filters.publish.topics[0]:format"));

    const auto d = make_device(hub).device;
    device_update up;
    up.filters = message_filters{{}, rule(filter_policy::accept, {"{{ x }}"})};
    EXPECT_EQ(details_of(error_of([&] { reg_.update_device(mine, d->id, up); })),
              names("message_filters.subscribe.topics[0]:format"));
    EXPECT_EQ(reg_.find_device(d->id), d);
}

// --- Update, enable, disable, delete

TEST_F(registry_test, update_device_changes_fields_and_tells_the_listener) {
    const auto hub = make_hub().hub->id;
    const auto before = make_device(hub, "d").device;
    listener_.calls.clear();
    now_ += 1000;
    device_update req;
    req.description = "new";
    req.allow_insecure = true;
    req.allow_multiple_connections = true;
    req.filters =
        message_filters{rule(filter_policy::accept, {"a/#"}), rule(filter_policy::unknown, {})};
    const auto after = reg_.update_device(mine, before->id, req).device;
    EXPECT_EQ(after->name, "d");
    EXPECT_EQ(after->description, "new");
    EXPECT_TRUE(after->allow_insecure);
    EXPECT_TRUE(after->allow_multiple_connections);
    EXPECT_EQ(after->filters.publish, rule(filter_policy::accept, {"a/#"}));
    EXPECT_EQ(after->filters.subscribe, rule(filter_policy::reject, {}));
    EXPECT_EQ(after->created_at_ms, before->created_at_ms);
    EXPECT_EQ(after->updated_at_ms, now_);
    EXPECT_EQ(before->description, "");  // the old record is immutable

    ASSERT_EQ(listener_.calls.size(), 1u);
    EXPECT_EQ(listener_.calls[0].what, "device");
    EXPECT_EQ(listener_.calls[0].before, before);
    EXPECT_EQ(listener_.calls[0].after, after);
    EXPECT_EQ(reg_.find_device_by_name(hub, "d"), after);

    // The same values again: nothing to do.
    now_ += 1000;
    EXPECT_EQ(reg_.update_device(mine, before->id, req).device, after);
    EXPECT_EQ(listener_.calls.size(), 1u);
}

TEST_F(registry_test, update_device_rechecks_multiple_connections_against_the_plan) {
    const auto shared = make_hub("s", product_plan::plan_shared).hub->id;
    const auto dedicated = make_hub("d", product_plan::plan_dedicated).hub->id;
    const auto d = make_device(shared, "x").device;
    device_update on;
    on.allow_multiple_connections = true;
    EXPECT_EQ(details_of(error_of([&] { reg_.update_device(mine, d->id, on); })),
              names("allow_multiple_connections:constraint"));

    // On a dedicated hub it may; moving it back to the shared hub is then refused.
    device_update move;
    move.hub_id = dedicated;
    move.allow_multiple_connections = true;
    EXPECT_TRUE(reg_.update_device(mine, d->id, move).device->allow_multiple_connections);
    device_update back;
    back.hub_id = shared;
    EXPECT_EQ(details_of(error_of([&] { reg_.update_device(mine, d->id, back); })),
              names("allow_multiple_connections:constraint"));
    back.allow_multiple_connections = false;
    EXPECT_EQ(reg_.update_device(mine, d->id, back).device->hub_id, shared);
}

TEST_F(registry_test, update_device_moves_it_to_another_hub) {
    const auto h1 = make_hub("one").hub->id;
    const auto h2 = make_hub("two").hub->id;
    const auto d = make_device(h1, "mover").device;
    make_device(h2, "taken");
    const auto clash = make_device(h1, "taken").device;

    device_update req;
    req.hub_id = h2;
    const auto e = error_of([&] { reg_.update_device(mine, clash->id, req); });
    EXPECT_EQ(e.kind, error_kind::already_exists);
    EXPECT_EQ(e.resource_id, "taken");

    const auto moved = reg_.update_device(mine, d->id, req).device;
    EXPECT_EQ(moved->hub_id, h2);
    EXPECT_EQ(reg_.find_device_by_name(h2, "mover"), moved);
    EXPECT_EQ(reg_.find_device_by_name(h1, "mover"), nullptr);
    EXPECT_EQ(reg_.devices_of(h1).size(), 1u);
    EXPECT_EQ(reg_.get_hub(mine, h2).device_count, 2u);

    const auto foreign = make_hub("f", product_plan::plan_dedicated, theirs).hub->id;
    req.hub_id = foreign;
    const auto nf = error_of([&] { reg_.update_device(mine, d->id, req); });
    EXPECT_EQ(nf.kind, error_kind::not_found);
    EXPECT_EQ(nf.resource, "hub");
    EXPECT_EQ(nf.resource_id, foreign);
}

TEST_F(registry_test, enable_and_disable_device) {
    const auto hub = make_hub().hub->id;
    const auto d = make_device(hub).device;
    listener_.calls.clear();
    const auto off = reg_.disable_device(mine, d->id).device;
    EXPECT_FALSE(off->enabled);
    EXPECT_EQ(reg_.find_device(d->id), off);
    EXPECT_EQ(reg_.disable_device(mine, d->id).device, off);  // idempotent
    ASSERT_EQ(listener_.calls.size(), 1u);
    EXPECT_EQ(listener_.calls[0].before, d);
    EXPECT_EQ(listener_.calls[0].after, off);
    EXPECT_TRUE(reg_.enable_device(mine, d->id).device->enabled);
    EXPECT_EQ(listener_.calls.size(), 2u);
}

TEST_F(registry_test, delete_device) {
    const auto hub = make_hub().hub->id;
    const auto d = make_device(hub, "gone").device;
    listener_.calls.clear();
    reg_.delete_device(mine, d->id);
    EXPECT_EQ(reg_.find_device(d->id), nullptr);
    EXPECT_EQ(reg_.find_device_by_name(hub, "gone"), nullptr);
    EXPECT_TRUE(reg_.devices_of(hub).empty());
    ASSERT_EQ(listener_.calls.size(), 1u);
    EXPECT_EQ(listener_.calls[0].before, d);
    EXPECT_EQ(listener_.calls[0].after, nullptr);
    const auto e = error_of([&] { reg_.get_device(mine, d->id); });
    EXPECT_EQ(e.kind, error_kind::not_found);
    EXPECT_EQ(e.resource, "device");
    EXPECT_EQ(e.resource_id, d->id);
    make_device(hub, "gone");  // the name is free again
}

TEST_F(registry_test, devices_of_another_project_are_not_found) {
    const auto hub = make_hub("x", product_plan::plan_dedicated, theirs).hub->id;
    const auto id = make_device(hub, "d", theirs).device->id;
    for (const auto& call : std::vector<std::function<void()>>{
             [&] { reg_.get_device(mine, id); },
             [&] { reg_.update_device(mine, id, {}); },
             [&] { reg_.enable_device(mine, id); },
             [&] { reg_.disable_device(mine, id); },
             [&] { reg_.delete_device(mine, id); },
         }) {
        const auto e = error_of(call);
        EXPECT_EQ(e.kind, error_kind::not_found);
        EXPECT_EQ(e.resource, "device");
        EXPECT_EQ(e.resource_id, id);
    }
    EXPECT_TRUE(reg_.find_device(id));  // the MQTT side has no scope
}

TEST_F(registry_test, device_view_reports_presence) {
    const auto hub = make_hub().hub->id;
    const auto id = make_device(hub).device->id;
    presence_.connected[id] = true;
    presence_.activity[id] = 1234;
    const device_view v = reg_.get_device(mine, id);
    EXPECT_TRUE(v.is_connected);
    EXPECT_EQ(v.last_activity_at_ms, 1234u);
}

TEST_F(registry_test, failed_device_writes_leave_memory_unchanged) {
    const auto hub = make_hub().hub->id;
    const auto other = make_hub("other").hub->id;
    const auto d = make_device(hub, "kept").device;
    listener_.calls.clear();
    db_.fail = true;

    EXPECT_THROW(make_device(hub, "lost"), std::runtime_error);
    device_update up;
    up.description = "changed";
    up.hub_id = other;
    EXPECT_THROW(reg_.update_device(mine, d->id, up), std::runtime_error);
    EXPECT_THROW(reg_.disable_device(mine, d->id), std::runtime_error);
    EXPECT_THROW(reg_.delete_device(mine, d->id), std::runtime_error);

    EXPECT_TRUE(listener_.calls.empty());
    EXPECT_EQ(reg_.find_device(d->id), d);
    EXPECT_EQ(reg_.find_device_by_name(hub, "kept"), d);
    EXPECT_EQ(reg_.find_device_by_name(hub, "lost"), nullptr);
    EXPECT_EQ(reg_.find_device_by_name(other, "kept"), nullptr);
    EXPECT_EQ(reg_.devices_of(hub).size(), 1u);
    EXPECT_EQ(reg_.get_hub(mine, other).device_count, 0u);
    EXPECT_EQ(reg_.list_devices(mine, {}, {}).total_count, 1u);

    db_.fail = false;
    EXPECT_EQ(make_device(hub, "lost").device->name, "lost");  // nothing was half-reserved
}

TEST_F(registry_test, listener_may_read_the_registry_back) {
    const auto hub = make_hub().hub->id;
    std::vector<bool> found;
    listener_.during_call = [&] {
        const auto& c = listener_.calls.back();
        // The change is visible, and the lock is free (a held lock would deadlock here).
        found.push_back(c.after_id.empty() ? reg_.find_device(c.before_id) == nullptr
                                           : reg_.get_device(mine, c.after_id).device != nullptr);
        reg_.list_devices(mine, {}, {});
    };
    const auto d = make_device(hub).device;
    reg_.disable_device(mine, d->id);
    reg_.delete_device(mine, d->id);
    EXPECT_EQ(found, (std::vector<bool>{true, true, true}));
}

}  // namespace
}  // namespace iothub::hub
