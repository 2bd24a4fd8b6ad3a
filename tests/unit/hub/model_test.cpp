#include "hub/model.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace iothub::hub {
namespace {

TEST(model, enum_strings_are_the_api_values_and_parse_back) {
    for (auto s : {hub_status::unknown, hub_status::error, hub_status::enabling, hub_status::ready,
                   hub_status::disabling, hub_status::disabled}) {
        EXPECT_EQ(parse_hub_status(to_string(s)), s);
    }
    for (auto p : {product_plan::plan_unknown, product_plan::plan_shared,
                   product_plan::plan_dedicated, product_plan::plan_ha}) {
        EXPECT_EQ(parse_product_plan(to_string(p)), p);
    }
    for (auto s : {device_status::unknown, device_status::error, device_status::enabled,
                   device_status::disabled}) {
        EXPECT_EQ(parse_device_status(to_string(s)), s);
    }
    for (auto p : {filter_policy::unknown, filter_policy::accept, filter_policy::reject}) {
        EXPECT_EQ(parse_filter_policy(to_string(p)), p);
    }
    EXPECT_EQ(to_string(hub_status::disabling), "disabling");
    EXPECT_EQ(to_string(product_plan::plan_ha), "plan_ha");
    EXPECT_EQ(to_string(device_status::enabled), "enabled");
    EXPECT_EQ(to_string(filter_policy::accept), "accept");
}

TEST(model, unknown_strings_do_not_parse) {
    EXPECT_EQ(parse_hub_status("Ready"), std::nullopt);
    EXPECT_EQ(parse_product_plan("shared"), std::nullopt);
    EXPECT_EQ(parse_device_status(""), std::nullopt);
    EXPECT_EQ(parse_filter_policy("allow"), std::nullopt);
}

TEST(model, make_uuid_gives_distinct_version_4_ids) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        const std::string id = make_uuid();
        ASSERT_TRUE(is_uuid(id)) << id;
        EXPECT_EQ(id[14], '4') << id;
        EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
        for (char c : id) EXPECT_FALSE(c >= 'A' && c <= 'F') << id;
        seen.insert(id);
    }
    EXPECT_EQ(seen.size(), 1000u);
}

TEST(model, is_uuid_accepts_the_canonical_form_only) {
    EXPECT_TRUE(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
    EXPECT_TRUE(is_uuid("123E4567-E89B-12D3-A456-426614174000"));
    EXPECT_FALSE(is_uuid(""));
    EXPECT_FALSE(is_uuid("123e4567e89b12d3a456426614174000"));
    EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456-42661417400"));
    EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456-4266141740000"));
    EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456_426614174000"));
    EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
    EXPECT_FALSE(is_uuid("{23e4567-e89b-12d3-a456-426614174000"));
}

}  // namespace
}  // namespace iothub::hub
