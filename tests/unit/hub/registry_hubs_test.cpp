// Hub operations of the registry: create, read, update, enable/disable, delete.

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

TEST_F(registry_test, create_hub_fills_in_the_defaults) {
    hub_create req;
    req.name = "minimal";
    const hub_view v = reg_.create_hub(mine, req);
    ASSERT_TRUE(v.hub);
    EXPECT_TRUE(is_uuid(v.hub->id));
    EXPECT_EQ(v.hub->name, "minimal");
    EXPECT_EQ(v.hub->project_id, mine.project_id);
    EXPECT_EQ(v.hub->organization_id, mine.project_id);
    EXPECT_EQ(v.hub->plan, product_plan::plan_shared);
    EXPECT_TRUE(v.hub->enabled);
    EXPECT_FALSE(v.hub->disable_events);
    EXPECT_EQ(v.hub->events_topic_prefix, "$SCW/events");
    EXPECT_FALSE(v.hub->enable_device_auto_provisioning);
    EXPECT_FALSE(v.hub->has_custom_ca);
    EXPECT_TRUE(v.hub->presence_events);
    EXPECT_EQ(v.hub->twins_graphite_push_uri, std::nullopt);
    EXPECT_EQ(v.hub->created_at_ms, now_);
    EXPECT_EQ(v.hub->updated_at_ms, now_);
    EXPECT_EQ(v.status, hub_status::enabling);
    EXPECT_EQ(v.device_count, 0u);
    EXPECT_EQ(v.connected_device_count, 0u);
    // The change is complete at once: every later read says ready.
    EXPECT_EQ(reg_.get_hub(mine, v.hub->id).status, hub_status::ready);
    EXPECT_EQ(reg_.find_hub(v.hub->id), v.hub);
}

TEST_F(registry_test, create_hub_takes_the_given_options) {
    hub_create req;
    req.name = "full";
    req.project_id = mine.project_id;
    req.plan = product_plan::plan_ha;
    req.disable_events = true;
    req.events_topic_prefix = "my/events";
    req.presence_events = false;
    req.twins_graphite_push_uri = "tcp://graphite:2003";
    const hub_view v = reg_.create_hub(mine, req);
    EXPECT_EQ(v.hub->plan, product_plan::plan_ha);
    EXPECT_TRUE(v.hub->disable_events);
    EXPECT_EQ(v.hub->events_topic_prefix, "my/events");
    EXPECT_FALSE(v.hub->presence_events);
    EXPECT_EQ(v.hub->twins_graphite_push_uri, "tcp://graphite:2003");
}

TEST_F(registry_test, create_hub_without_a_name_gets_a_random_readable_one) {
    const hub_view a = make_hub("");
    const hub_view b = make_hub("");
    EXPECT_TRUE(a.hub->name.starts_with("hub-")) << a.hub->name;
    EXPECT_GT(a.hub->name.size(), 8u);
    for (char c : a.hub->name)
        EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
    EXPECT_NE(a.hub->id, b.hub->id);
}

TEST_F(registry_test, create_hub_in_another_project_is_denied) {
    hub_create req;
    req.project_id = theirs.project_id;
    const auto e = error_of([&] { reg_.create_hub(mine, req); });
    EXPECT_EQ(e.kind, error_kind::permissions_denied);
    EXPECT_TRUE(listener_.calls.empty());
}

TEST_F(registry_test, hub_names_are_checked) {
    const auto too_long = error_of([&] { make_hub(std::string(256, 'a')); });
    EXPECT_EQ(too_long.kind, error_kind::invalid_arguments);
    EXPECT_EQ(details_of(too_long), names("name:constraint"));
    EXPECT_EQ(details_of(error_of([&] { make_hub("tab\there"); })), names("name:constraint"));
    EXPECT_EQ(details_of(error_of([&] { make_hub("del\x7f"); })), names("name:constraint"));
    EXPECT_EQ(details_of(error_of([&] { make_hub("\xff"); })), names("name:format"));

    // No level separators or wildcards: {{hub.name}} in a filter stays one level.
    for (const char* bad : {"my/hub", "a+b", "a#"})
        EXPECT_EQ(details_of(error_of([&] { make_hub(bad); })), names("name:constraint")) << bad;

    // 255 characters, counted as characters, not bytes.
    std::string accented;
    for (int i = 0; i < 255; ++i) accented += "\xc3\xa9";
    EXPECT_EQ(make_hub(accented).hub->name, accented);
    EXPECT_EQ(make_hub("my hub with spaces").hub->name, "my hub with spaces");
}

TEST_F(registry_test, events_topic_prefix_must_be_a_topic_name) {
    for (const std::string& bad :
         std::vector<std::string>{"", "a/+/b", "a/#", std::string("a\0b", 3)}) {
        hub_create req;
        req.events_topic_prefix = bad;
        const auto e = error_of([&] { reg_.create_hub(mine, req); });
        EXPECT_EQ(e.kind, error_kind::invalid_arguments) << bad;
        EXPECT_EQ(details_of(e), names("events_topic_prefix:format")) << bad;
    }
    hub_create req;
    req.name = "\x01";
    req.events_topic_prefix = "#";
    EXPECT_EQ(details_of(error_of([&] { reg_.create_hub(mine, req); })),
              names("name:constraint", "events_topic_prefix:format"));
}

class small_quota_test : public registry_test {
protected:
    small_quota_test() : registry_test(registry_limits{2, 2}) {}
};

TEST_F(small_quota_test, hubs_per_project_are_limited) {
    make_hub("a");
    make_hub("b");
    const auto e = error_of([&] { make_hub("c"); });
    EXPECT_EQ(e.kind, error_kind::quotas_exceeded);
    EXPECT_EQ(e.resource, "hub");
    make_hub("d", product_plan::plan_shared, theirs);  // another project has its own quota
    EXPECT_EQ(listener_.calls.size(), 3u);
}

TEST_F(registry_test, hubs_of_another_project_are_not_found) {
    const auto id = make_hub("theirs", product_plan::plan_shared, theirs).hub->id;
    for (const auto& call : std::vector<std::function<void()>>{
             [&] { reg_.get_hub(mine, id); },
             [&] { reg_.update_hub(mine, id, {}); },
             [&] { reg_.enable_hub(mine, id); },
             [&] { reg_.disable_hub(mine, id); },
             [&] { reg_.delete_hub(mine, id, true); },
         }) {
        const auto e = error_of(call);
        EXPECT_EQ(e.kind, error_kind::not_found);
        EXPECT_EQ(e.resource, "hub");
        EXPECT_EQ(e.resource_id, id);
    }
    EXPECT_EQ(reg_.get_hub(theirs, id).hub->name, "theirs");
    EXPECT_EQ(error_of([&] { reg_.get_hub(mine, "nope"); }).resource_id, "nope");
}

TEST_F(registry_test, disable_and_enable_report_the_transient_status) {
    const auto id = make_hub().hub->id;
    listener_.calls.clear();
    now_ += 1000;
    const hub_view off = reg_.disable_hub(mine, id);
    EXPECT_EQ(off.status, hub_status::disabling);
    EXPECT_FALSE(off.hub->enabled);
    EXPECT_EQ(off.hub->updated_at_ms, now_);
    EXPECT_EQ(reg_.get_hub(mine, id).status, hub_status::disabled);
    ASSERT_EQ(listener_.calls.size(), 1u);

    // Disabling a disabled hub is fine, still transient, and changes nothing.
    now_ += 1000;
    const hub_view again = reg_.disable_hub(mine, id);
    EXPECT_EQ(again.status, hub_status::disabling);
    EXPECT_EQ(again.hub, off.hub);
    EXPECT_EQ(listener_.calls.size(), 1u);

    const hub_view on = reg_.enable_hub(mine, id);
    EXPECT_EQ(on.status, hub_status::enabling);
    EXPECT_TRUE(on.hub->enabled);
    EXPECT_EQ(reg_.get_hub(mine, id).status, hub_status::ready);
    EXPECT_EQ(reg_.enable_hub(mine, id).status, hub_status::enabling);
    EXPECT_EQ(listener_.calls.size(), 2u);
}

TEST_F(registry_test, update_hub_changes_fields_and_updated_at) {
    const hub_view created = make_hub("old");
    const auto id = created.hub->id;
    now_ += 5000;
    hub_update req;
    req.name = "new";
    req.disable_events = true;
    req.events_topic_prefix = "x/y";
    req.presence_events = false;
    req.twins_graphite_push_uri = "tcp://g:1";
    const hub_view v = reg_.update_hub(mine, id, req);
    EXPECT_EQ(v.status, hub_status::ready);
    EXPECT_EQ(v.hub->name, "new");
    EXPECT_TRUE(v.hub->disable_events);
    EXPECT_EQ(v.hub->events_topic_prefix, "x/y");
    EXPECT_FALSE(v.hub->presence_events);
    EXPECT_EQ(v.hub->twins_graphite_push_uri, "tcp://g:1");
    EXPECT_EQ(v.hub->created_at_ms, created.hub->created_at_ms);
    EXPECT_EQ(v.hub->updated_at_ms, now_);
    // The old record is untouched: readers holding it see a consistent snapshot.
    EXPECT_EQ(created.hub->name, "old");

    hub_update clear;
    clear.twins_graphite_push_uri = "";
    EXPECT_EQ(reg_.update_hub(mine, id, clear).hub->twins_graphite_push_uri, std::nullopt);
}

TEST_F(registry_test, update_hub_without_a_change_writes_nothing) {
    const hub_view created = make_hub("same");
    listener_.calls.clear();
    now_ += 5000;
    hub_update req;
    req.name = "same";
    req.plan = product_plan::plan_dedicated;  // its plan: allowed while enabled
    const hub_view v = reg_.update_hub(mine, created.hub->id, req);
    EXPECT_EQ(v.hub, created.hub);
    EXPECT_EQ(v.hub->updated_at_ms, created.hub->updated_at_ms);
    EXPECT_TRUE(listener_.calls.empty());
}

TEST_F(registry_test, update_hub_checks_its_arguments) {
    const auto id = make_hub().hub->id;
    hub_update req;
    req.name = "";
    req.events_topic_prefix = "a/+";
    EXPECT_EQ(details_of(error_of([&] { reg_.update_hub(mine, id, req); })),
              names("name:required", "events_topic_prefix:format"));
}

TEST_F(registry_test, plan_changes_only_while_disabled) {
    const auto id = make_hub("h", product_plan::plan_shared).hub->id;
    hub_update req;
    req.plan = product_plan::plan_dedicated;
    const auto e = error_of([&] { reg_.update_hub(mine, id, req); });
    EXPECT_EQ(e.kind, error_kind::precondition_failed);
    EXPECT_EQ(e.precondition, "resource_not_usable");
    EXPECT_NE(e.help_message.find("disabled"), std::string::npos);
    EXPECT_EQ(reg_.find_hub(id)->plan, product_plan::plan_shared);

    hub_update unknown;  // the API's "not set"
    unknown.plan = product_plan::plan_unknown;
    EXPECT_EQ(reg_.update_hub(mine, id, unknown).hub->plan, product_plan::plan_shared);

    reg_.disable_hub(mine, id);
    EXPECT_EQ(reg_.update_hub(mine, id, req).hub->plan, product_plan::plan_dedicated);
}

TEST_F(registry_test, plan_shared_is_refused_while_devices_allow_multiple_connections) {
    const auto id = make_hub("h", product_plan::plan_dedicated).hub->id;
    device_create d;
    d.hub_id = id;
    d.allow_multiple_connections = true;
    reg_.create_device(mine, d);
    reg_.disable_hub(mine, id);
    hub_update req;
    req.plan = product_plan::plan_shared;
    const auto e = error_of([&] { reg_.update_hub(mine, id, req); });
    EXPECT_EQ(e.kind, error_kind::precondition_failed);
    EXPECT_EQ(e.precondition, "resource_still_in_use");
}

TEST_F(registry_test, auto_provisioning_needs_a_custom_ca) {
    const auto id = make_hub().hub->id;
    hub_update on;
    on.enable_device_auto_provisioning = true;
    const auto e = error_of([&] { reg_.update_hub(mine, id, on); });
    EXPECT_EQ(e.kind, error_kind::precondition_failed);
    EXPECT_FALSE(e.help_message.empty());
    hub_update off;
    off.enable_device_auto_provisioning = false;
    EXPECT_FALSE(reg_.update_hub(mine, id, off).hub->enable_device_auto_provisioning);

    // With a custom CA on record (set by the CA code through the store), it may be enabled.
    store::hub_row row;
    db_.load([&](store::hub_row&& h) { row = std::move(h); }, [](store::device_row&&) {});
    row.has_custom_ca = true;
    db_.put_hub(row);
    reg_.load();
    EXPECT_TRUE(reg_.update_hub(mine, id, on).hub->enable_device_auto_provisioning);
}

TEST_F(registry_test, delete_hub_with_devices_needs_delete_devices) {
    const auto id = make_hub().hub->id;
    const auto d1 = make_device(id, "a").device;
    const auto d2 = make_device(id, "b").device;
    const auto e = error_of([&] { reg_.delete_hub(mine, id, false); });
    EXPECT_EQ(e.kind, error_kind::precondition_failed);
    EXPECT_EQ(e.precondition, "resource_still_in_use");
    EXPECT_EQ(e.help_message, "the hub still has devices; delete them or pass delete_devices=true");
    ASSERT_TRUE(reg_.find_hub(id));

    listener_.calls.clear();
    reg_.delete_hub(mine, id, true);
    EXPECT_FALSE(reg_.find_hub(id));
    EXPECT_FALSE(reg_.find_device(d1->id));
    EXPECT_FALSE(reg_.find_device_by_name(id, "b"));
    EXPECT_TRUE(reg_.devices_of(id).empty());
    ASSERT_EQ(listener_.calls.size(), 3u);
    EXPECT_EQ(listener_.calls[0].what, "device");
    EXPECT_EQ(listener_.calls[0].after_id, "");
    EXPECT_EQ(listener_.calls[1].what, "device");
    EXPECT_EQ(listener_.calls[2].what, "hub");
    EXPECT_EQ(listener_.calls[2].before_id, id);
    EXPECT_EQ(listener_.calls[2].after_id, "");

    std::size_t stored = 0;
    db_.load([&](store::hub_row&&) { ++stored; }, [&](store::device_row&&) { ++stored; });
    EXPECT_EQ(stored, 0u);
    EXPECT_EQ(error_of([&] { reg_.get_device(mine, d2->id); }).kind, error_kind::not_found);
}

TEST_F(registry_test, delete_empty_hub) {
    const auto id = make_hub().hub->id;
    reg_.delete_hub(mine, id, false);
    EXPECT_EQ(error_of([&] { reg_.get_hub(mine, id); }).kind, error_kind::not_found);
}

TEST_F(registry_test, hub_view_counts_devices_and_connections) {
    const auto id = make_hub().hub->id;
    make_device(id);
    make_device(id);
    presence_.per_hub[id] = 1;
    const hub_view v = reg_.get_hub(mine, id);
    EXPECT_EQ(v.device_count, 2u);
    EXPECT_EQ(v.connected_device_count, 1u);
    reg_.set_presence(nullptr);
    EXPECT_EQ(reg_.get_hub(mine, id).connected_device_count, 0u);
}

TEST_F(registry_test, listener_hears_hub_changes_with_the_lock_released) {
    std::string seen;
    listener_.during_call = [&] {
        // Reading and even writing back from the listener must not deadlock.
        if (auto h = reg_.find_hub(listener_.calls.back().after_id))
            seen = reg_.get_hub(mine, h->id).hub->name;
    };
    const auto id = make_hub("first").hub->id;
    EXPECT_EQ(seen, "first");
    ASSERT_EQ(listener_.calls.size(), 1u);
    EXPECT_EQ(listener_.calls[0].before_id, "");
    EXPECT_EQ(listener_.calls[0].after_id, id);

    hub_update req;
    req.name = "second";
    reg_.update_hub(mine, id, req);
    ASSERT_EQ(listener_.calls.size(), 2u);
    EXPECT_EQ(listener_.calls[1].before_id, id);
    EXPECT_EQ(std::static_pointer_cast<const hub_record>(listener_.calls[1].before)->name, "first");
    EXPECT_EQ(std::static_pointer_cast<const hub_record>(listener_.calls[1].after)->name, "second");
    EXPECT_EQ(seen, "second");
}

// --- A failed store write changes nothing

TEST_F(registry_test, failed_hub_writes_leave_memory_unchanged) {
    const hub_view kept = make_hub("kept");
    const auto id = kept.hub->id;
    make_device(id, "dev");
    listener_.calls.clear();
    db_.fail = true;

    EXPECT_THROW(make_hub("lost"), std::runtime_error);
    hub_update req;
    req.name = "renamed";
    EXPECT_THROW(reg_.update_hub(mine, id, req), std::runtime_error);
    EXPECT_THROW(reg_.disable_hub(mine, id), std::runtime_error);
    EXPECT_THROW(reg_.delete_hub(mine, id, true), std::runtime_error);

    EXPECT_TRUE(listener_.calls.empty());
    EXPECT_EQ(reg_.find_hub(id), kept.hub);
    EXPECT_EQ(reg_.get_hub(mine, id).status, hub_status::ready);
    EXPECT_EQ(reg_.get_hub(mine, id).device_count, 1u);
    EXPECT_TRUE(reg_.find_device_by_name(id, "dev"));
    EXPECT_EQ(reg_.list_hubs(mine, {}, {}).total_count, 1u);

    db_.fail = false;  // and the registry is still usable
    EXPECT_EQ(reg_.update_hub(mine, id, req).hub->name, "renamed");
}

}  // namespace
}  // namespace iothub::hub
