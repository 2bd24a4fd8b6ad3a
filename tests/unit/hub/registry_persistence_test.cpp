// load() and the SQLite round trip; last activity; concurrent readers.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "hub/registry.hpp"
#include "hub/registry_fixture.hpp"
#include "store/registry_store.hpp"
#include "store/temp_dir.hpp"

namespace iothub::hub {
namespace {

using testing::mine;
using testing::registry_test;

std::uint64_t fixed_clock() {
    return 1'700'000'000'000;
}

TEST(registry_persistence, round_trip_through_sqlite) {
    store::testing::temp_dir dir;
    hub_ptr hub;
    device_ptr dev;
    device_ptr plain;
    {
        auto db = store::open_sqlite_registry(dir.str());
        registry reg(*db, fixed_clock);
        hub_create h;
        h.name = "persisted";
        h.plan = product_plan::plan_ha;
        h.events_topic_prefix = "ev";
        h.disable_events = true;
        h.presence_events = false;
        h.twins_graphite_push_uri = "tcp://g:2003";
        hub = reg.create_hub(mine, h).hub;
        reg.disable_hub(mine, hub->id);
        hub = reg.find_hub(hub->id);

        device_create d;
        d.hub_id = hub->id;
        d.name = "dev";
        d.description = "desc";
        d.allow_insecure = true;
        d.allow_multiple_connections = true;
        d.filters = message_filters{{filter_policy::accept, {"{{ device.id }}/#", "a/+"}},
                                    {filter_policy::reject, {"$SYS/#"}}};
        dev = reg.create_device(mine, d).device;
        device_create p;
        p.hub_id = hub->id;
        p.name = "plain";
        plain = reg.create_device(mine, p).device;
        reg.disable_device(mine, plain->id);
        plain = reg.find_device(plain->id);
        reg.record_activity(dev->id, 1'700'000'123'000);
        EXPECT_EQ(reg.flush_activity(), 1u);
    }
    auto db = store::open_sqlite_registry(dir.str());
    registry reg(*db, fixed_clock);
    reg.load();
    const hub_ptr h = reg.find_hub(hub->id);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->name, "persisted");
    EXPECT_EQ(h->project_id, hub->project_id);
    EXPECT_EQ(h->organization_id, hub->organization_id);
    EXPECT_EQ(h->plan, product_plan::plan_ha);
    EXPECT_FALSE(h->enabled);
    EXPECT_TRUE(h->disable_events);
    EXPECT_EQ(h->events_topic_prefix, "ev");
    EXPECT_FALSE(h->presence_events);
    EXPECT_EQ(h->twins_graphite_push_uri, "tcp://g:2003");
    EXPECT_EQ(h->created_at_ms, hub->created_at_ms);
    EXPECT_EQ(h->updated_at_ms, hub->updated_at_ms);
    EXPECT_EQ(reg.get_hub(mine, h->id).status, hub_status::disabled);
    EXPECT_EQ(reg.get_hub(mine, h->id).device_count, 2u);

    const device_ptr d = reg.find_device_by_name(hub->id, "dev");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->id, dev->id);
    EXPECT_EQ(d->description, "desc");
    EXPECT_TRUE(d->allow_insecure);
    EXPECT_TRUE(d->allow_multiple_connections);
    EXPECT_EQ(d->filters, dev->filters);
    EXPECT_EQ(d->created_at_ms, dev->created_at_ms);
    EXPECT_EQ(reg.get_device(mine, d->id).last_activity_at_ms, 1'700'000'123'000u);
    EXPECT_FALSE(reg.get_device(mine, d->id).is_connected);
    const device_ptr p = reg.find_device(plain->id);
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->enabled);
    EXPECT_EQ(p->filters, message_filters{});
    EXPECT_EQ(reg.devices_of(hub->id).size(), 2u);
    EXPECT_EQ(reg.list_devices(mine, {}, {}).total_count, 2u);

    // The loaded registry keeps working: names stay unique, deletes reach the file.
    device_create same;
    same.hub_id = hub->id;
    same.name = "dev";
    EXPECT_EQ(testing::error_of([&] { reg.create_device(mine, same); }).kind,
              error_kind::already_exists);
    reg.delete_hub(mine, hub->id, true);
    registry again(*db, fixed_clock);
    again.load();
    EXPECT_EQ(again.list_hubs(mine, {}, {}).total_count, 0u);
}

TEST_F(registry_test, load_replaces_memory_with_the_store) {
    const auto hub = make_hub("h").hub->id;
    make_device(hub, "d");
    registry fresh(db_, [this] { return now_; });
    EXPECT_EQ(fresh.find_hub(hub), nullptr);
    fresh.load();
    ASSERT_TRUE(fresh.find_hub(hub));
    EXPECT_TRUE(fresh.find_device_by_name(hub, "d"));
    EXPECT_EQ(fresh.get_hub(mine, hub).device_count, 1u);
    fresh.load();  // twice: no duplicates
    EXPECT_EQ(fresh.devices_of(hub).size(), 1u);
}

TEST_F(registry_test, activity_is_kept_in_memory_until_flushed) {
    const auto hub = make_hub().hub->id;
    const auto id = make_device(hub).device->id;
    const int base = db_.writes;
    reg_.record_activity(id, 1'000'000);
    reg_.record_activity(id, 1'030'000);
    reg_.record_activity(id, 0);
    reg_.record_activity("not-a-device", 5'000'000);
    EXPECT_EQ(db_.writes, base);  // workers never wait for the store
    // Without presence, the view falls back to what was recorded.
    reg_.set_presence(nullptr);
    EXPECT_EQ(reg_.get_device(mine, id).last_activity_at_ms, 1'030'000u);
    EXPECT_EQ(reg_.flush_activity(), 1u);
    EXPECT_EQ(db_.writes, base + 1);
    EXPECT_EQ(db_.device_writes.back().last_activity_at_ms, 1'030'000u);
    EXPECT_EQ(reg_.flush_activity(), 0u);  // nothing new
    EXPECT_EQ(db_.writes, base + 1);
    EXPECT_EQ(listener_.calls.size(), 2u);  // activity is not a registry change
}

TEST_F(registry_test, activity_failures_are_swallowed_and_retried) {
    const auto hub = make_hub().hub->id;
    const auto id = make_device(hub).device->id;
    reg_.record_activity(id, 1'000'000);
    db_.fail = true;
    EXPECT_EQ(reg_.flush_activity(), 0u);  // must not throw
    db_.fail = false;
    const int base = db_.writes;
    EXPECT_EQ(reg_.flush_activity(), 1u);  // the failed write did not count as done
    EXPECT_EQ(db_.writes, base + 1);
}

TEST_F(registry_test, other_writes_keep_the_last_activity) {
    const auto hub = make_hub().hub->id;
    const auto id = make_device(hub).device->id;
    reg_.record_activity(id, 1'010'000);  // in memory only
    device_update up;
    up.description = "x";
    reg_.update_device(mine, id, up);
    EXPECT_EQ(db_.device_writes.back().last_activity_at_ms, 1'010'000u);
    // That write counts as flushed.
    EXPECT_EQ(reg_.flush_activity(), 0u);
}

TEST_F(registry_test, presence_activity_wins_over_the_stored_one) {
    const auto hub = make_hub().hub->id;
    const auto id = make_device(hub).device->id;
    reg_.record_activity(id, 1'000);
    presence_.activity[id] = 2'000;
    EXPECT_EQ(reg_.get_device(mine, id).last_activity_at_ms, 2'000u);
    presence_.activity.clear();
    EXPECT_EQ(reg_.get_device(mine, id).last_activity_at_ms, 1'000u);
}

TEST_F(registry_test, readers_run_beside_writers) {
    const auto hub = make_hub().hub->id;
    std::atomic<bool> stop{false};
    std::atomic<int> reads{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
        readers.emplace_back([&] {
            while (!stop) {
                for (const auto& d : reg_.devices_of(hub)) {
                    // It may be gone by now; a record that is returned is whole.
                    if (const auto same = reg_.find_device_by_name(hub, d->name)) {
                        EXPECT_EQ(same->hub_id, hub);
                    }
                    reg_.record_activity(d->id, 1'000'000);
                }
                reg_.list_devices(mine, {}, {});
                ++reads;
            }
        });
    }
    std::vector<std::string> ids;
    for (int i = 0; i < 200; ++i) {
        ids.push_back(make_device(hub).device->id);
        if (i % 3 == 0) reg_.disable_device(mine, ids.back());
        if (i % 5 == 0) {
            reg_.delete_device(mine, ids.front());
            ids.erase(ids.begin());
        }
    }
    stop = true;
    for (auto& t : readers) t.join();
    EXPECT_GT(reads.load(), 0);
    EXPECT_EQ(reg_.devices_of(hub).size(), ids.size());
    EXPECT_EQ(reg_.get_hub(mine, hub).device_count, ids.size());
}

}  // namespace
}  // namespace iothub::hub
