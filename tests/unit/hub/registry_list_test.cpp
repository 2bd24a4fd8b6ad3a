// list_hubs / list_devices: filters, ordering and paging.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

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

std::vector<std::string> hub_names(const page<hub_view>& p) {
    std::vector<std::string> out;
    for (const auto& v : p.items) out.push_back(v.hub->name);
    return out;
}

std::vector<std::string> device_names(const page<device_view>& p) {
    std::vector<std::string> out;
    for (const auto& v : p.items) out.push_back(v.device->name);
    return out;
}

paging order(std::string by, std::uint32_t page = 1, std::uint32_t size = 20) {
    return {page, size, std::move(by)};
}

TEST_F(registry_test, list_hubs_defaults_to_creation_order) {
    for (const char* n : {"c", "a", "b"}) {
        make_hub(n);
        now_ += 10;
    }
    const auto all = reg_.list_hubs(mine, {}, {});
    EXPECT_EQ(all.total_count, 3u);
    EXPECT_EQ(hub_names(all), names("c", "a", "b"));
    EXPECT_EQ(hub_names(reg_.list_hubs(mine, {}, order("created_at_desc"))), names("b", "a", "c"));
    EXPECT_EQ(hub_names(reg_.list_hubs(mine, {}, order("name_asc"))), names("a", "b", "c"));
    EXPECT_EQ(hub_names(reg_.list_hubs(mine, {}, order("name_desc"))), names("c", "b", "a"));
}

TEST_F(registry_test, list_hubs_orders_by_status_plan_and_update) {
    const auto a = make_hub("a", product_plan::plan_ha).hub->id;
    make_hub("b", product_plan::plan_shared);
    make_hub("c", product_plan::plan_dedicated);
    now_ += 10;
    reg_.disable_hub(mine, a);
    EXPECT_EQ(hub_names(reg_.list_hubs(mine, {}, order("product_plan_asc"))), names("b", "c", "a"));
    EXPECT_EQ(hub_names(reg_.list_hubs(mine, {}, order("product_plan_desc"))),
              names("a", "c", "b"));
    // ready sorts before disabled, as in the API's enum; equal keys go by id.
    const auto by_status = hub_names(reg_.list_hubs(mine, {}, order("status_asc")));
    EXPECT_EQ(by_status.back(), "a");
    EXPECT_EQ(hub_names(reg_.list_hubs(mine, {}, order("status_desc"))).front(), "a");
    EXPECT_EQ(hub_names(reg_.list_hubs(mine, {}, order("updated_at_desc"))).front(), "a");
    EXPECT_EQ(hub_names(reg_.list_hubs(mine, {}, order("updated_at_asc"))).back(), "a");
}

TEST_F(registry_test, list_hubs_filters) {
    make_hub("Alpha");
    make_hub("alphabet");
    make_hub("beta");
    make_hub("alpha-theirs", product_plan::plan_shared, theirs);
    hub_filter f;
    f.name = "alpha";  // substring, case-sensitive
    EXPECT_EQ(hub_names(reg_.list_hubs(mine, f, order("name_asc"))), names("alphabet"));
    f.name = "";
    EXPECT_EQ(reg_.list_hubs(mine, f, {}).total_count, 3u);

    hub_filter project;
    project.project_id = mine.project_id;
    project.organization_id = mine.project_id;
    EXPECT_EQ(reg_.list_hubs(mine, project, {}).total_count, 3u);
    project.project_id = theirs.project_id;  // not the caller's to see
    EXPECT_EQ(reg_.list_hubs(mine, project, {}).total_count, 0u);
    hub_filter org;
    org.organization_id = theirs.project_id;
    EXPECT_EQ(reg_.list_hubs(mine, org, {}).total_count, 0u);
    EXPECT_EQ(hub_names(reg_.list_hubs(theirs, {}, {})), names("alpha-theirs"));
}

TEST_F(registry_test, list_pages_are_stable_and_complete) {
    // Equal creation times everywhere: the id decides, so pages neither repeat nor skip.
    std::vector<std::string> ids;
    for (int i = 0; i < 25; ++i) ids.push_back(make_hub("same").hub->id);
    std::sort(ids.begin(), ids.end());
    std::vector<std::string> seen;
    for (std::uint32_t page = 1; page <= 3; ++page) {
        const auto p = reg_.list_hubs(mine, {}, order("name_asc", page, 10));
        EXPECT_EQ(p.total_count, 25u);
        EXPECT_EQ(p.items.size(), page < 3 ? 10u : 5u);
        for (const auto& v : p.items) seen.push_back(v.hub->id);
    }
    EXPECT_EQ(seen, ids);
    const auto past = reg_.list_hubs(mine, {}, order("", 4, 10));
    EXPECT_TRUE(past.items.empty());
    EXPECT_EQ(past.total_count, 25u);
    const auto far = reg_.list_hubs(mine, {}, order("", 4'000'000'000u, 100));
    EXPECT_TRUE(far.items.empty());
    // Descending still breaks ties by ascending id.
    EXPECT_EQ(reg_.list_hubs(mine, {}, order("name_desc", 1, 1)).items[0].hub->id, ids[0]);
}

TEST_F(registry_test, paging_arguments_are_checked) {
    EXPECT_EQ(details_of(error_of([&] { reg_.list_hubs(mine, {}, order("", 0, 20)); })),
              names("page:constraint"));
    EXPECT_EQ(details_of(error_of([&] { reg_.list_hubs(mine, {}, order("", 1, 0)); })),
              names("page_size:constraint"));
    EXPECT_EQ(details_of(error_of([&] { reg_.list_devices(mine, {}, order("", 1, 101)); })),
              names("page_size:constraint"));
    EXPECT_EQ(reg_.list_devices(mine, {}, order("", 1, 100)).total_count, 0u);
    for (const char* bad :
         {"name", "name_up", "hub_id_asc", "_asc", "asc", "NAME_ASC", "created_at_asc_"}) {
        const auto e = error_of([&] { reg_.list_hubs(mine, {}, order(bad)); });
        EXPECT_EQ(e.kind, error_kind::invalid_arguments) << bad;
        EXPECT_EQ(details_of(e), names("order_by:format")) << bad;
    }
    EXPECT_EQ(
        details_of(error_of([&] { reg_.list_devices(mine, {}, order("product_plan_asc", 0)); })),
        names("page:constraint", "order_by:format"));
}

TEST_F(registry_test, list_hubs_reports_views) {
    const auto id = make_hub().hub->id;
    make_device(id);
    presence_.per_hub[id] = 1;
    reg_.disable_hub(mine, id);
    const auto p = reg_.list_hubs(mine, {}, {});
    ASSERT_EQ(p.items.size(), 1u);
    EXPECT_EQ(p.items[0].status, hub_status::disabled);
    EXPECT_EQ(p.items[0].device_count, 1u);
    EXPECT_EQ(p.items[0].connected_device_count, 1u);
}

class device_list_test : public registry_test {
protected:
    void SetUp() override {
        h1_ = make_hub("one").hub->id;
        h2_ = make_hub("two").hub->id;
        const auto foreign = make_hub("x", product_plan::plan_dedicated, testing::theirs).hub->id;
        make_device(foreign, "foreign-sensor", testing::theirs);
        add(h2_, "sensor-b", true);
        add(h1_, "sensor-a", false);
        add(h1_, "Sensor-c", true);
        reg_.disable_device(mine, add(h2_, "lamp", false));
    }

    std::string add(const std::string& hub, const std::string& name, bool insecure) {
        now_ += 10;
        device_create req;
        req.hub_id = hub;
        req.name = name;
        req.allow_insecure = insecure;
        return reg_.create_device(mine, req).device->id;
    }

    std::string h1_;
    std::string h2_;
};

TEST_F(device_list_test, default_order_is_creation) {
    const auto all = reg_.list_devices(mine, {}, {});
    EXPECT_EQ(all.total_count, 4u);
    EXPECT_EQ(device_names(all), names("sensor-b", "sensor-a", "Sensor-c", "lamp"));
}

TEST_F(device_list_test, filters) {
    device_filter f;
    f.hub_id = h1_;
    EXPECT_EQ(device_names(reg_.list_devices(mine, f, order("name_asc"))),
              names("Sensor-c", "sensor-a"));
    f = {};
    f.name = "sensor";
    EXPECT_EQ(device_names(reg_.list_devices(mine, f, {})), names("sensor-b", "sensor-a"));
    f = {};
    f.allow_insecure = true;
    EXPECT_EQ(device_names(reg_.list_devices(mine, f, {})), names("sensor-b", "Sensor-c"));
    f = {};
    f.status = device_status::disabled;
    EXPECT_EQ(device_names(reg_.list_devices(mine, f, {})), names("lamp"));
    f.status = device_status::unknown;  // the API's "not set"
    EXPECT_EQ(reg_.list_devices(mine, f, {}).total_count, 4u);
    f.status = device_status::error;
    EXPECT_EQ(reg_.list_devices(mine, f, {}).total_count, 0u);
    f = {};
    f.hub_id = "absent";
    EXPECT_EQ(reg_.list_devices(mine, f, {}).total_count, 0u);
    EXPECT_EQ(device_names(reg_.list_devices(theirs, {}, {})), names("foreign-sensor"));
}

TEST_F(device_list_test, orderings) {
    EXPECT_EQ(device_names(reg_.list_devices(mine, {}, order("name_desc"))),
              names("sensor-b", "sensor-a", "lamp", "Sensor-c"));
    EXPECT_EQ(device_names(reg_.list_devices(mine, {}, order("status_desc"))).front(), "lamp");
    EXPECT_EQ(device_names(reg_.list_devices(mine, {}, order("status_asc"))).back(), "lamp");
    // Equal keys go by (random) id: only the split between secure and insecure is fixed.
    const auto insecure_last = reg_.list_devices(mine, {}, order("allow_insecure_asc"));
    ASSERT_EQ(insecure_last.items.size(), 4u);
    EXPECT_FALSE(insecure_last.items[1].device->allow_insecure);
    EXPECT_TRUE(insecure_last.items[2].device->allow_insecure);
    EXPECT_LT(insecure_last.items[2].device->id, insecure_last.items[3].device->id);
    EXPECT_EQ(device_names(reg_.list_devices(mine, {}, order("updated_at_desc"))).front(), "lamp");
    EXPECT_EQ(device_names(reg_.list_devices(mine, {}, order("created_at_desc"))),
              names("lamp", "Sensor-c", "sensor-a", "sensor-b"));
    const auto by_hub = reg_.list_devices(mine, {}, order("hub_id_asc"));
    for (std::size_t i = 1; i < by_hub.items.size(); ++i) {
        EXPECT_LE(by_hub.items[i - 1].device->hub_id, by_hub.items[i].device->hub_id);
    }
    const auto page2 = reg_.list_devices(mine, {}, order("name_asc", 2, 3));
    EXPECT_EQ(page2.total_count, 4u);
    EXPECT_EQ(device_names(page2), names("sensor-b"));
}

}  // namespace
}  // namespace iothub::hub
