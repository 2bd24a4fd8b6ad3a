// Each error body carries exactly what @scaleway/sdk-client 1.3.3 needs to build its typed
// error (dist/scw/errors/standard/*.js): otherwise the SDK falls back to a bare ScalewayError.

#include "api/errors.hpp"

#include <gtest/gtest.h>

namespace iothub::api {
namespace {

using nlohmann::json;

bool is_string(const json& j, const char* field) {
    return j.contains(field) && j.at(field).is_string();
}

TEST(MapRegistryError, NotFound) {
    hub::registry_error e(hub::error_kind::not_found, "resource is not found");
    e.resource = "hub";
    e.resource_id = "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11";
    const auto r = map_registry_error(e);
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(r.body, (json{{"type", "not_found"},
                            {"message", "resource is not found"},
                            {"resource", "hub"},
                            {"resource_id", "6a1cf2c6-5d5b-4bd0-9e55-1d3c9e0d4a11"}}));
}

TEST(MapRegistryError, InvalidArgumentsCarryDetails) {
    hub::registry_error e(hub::error_kind::invalid_arguments, "invalid argument(s)");
    e.details.push_back({"message_filters.publish.topics", "constraint", "bad topic"});
    e.details.push_back({"name", "", "too long"});
    const auto r = map_registry_error(e);
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body.at("type"), "invalid_arguments");
    ASSERT_TRUE(r.body.at("details").is_array());
    ASSERT_EQ(r.body.at("details").size(), 2u);
    const auto& d = r.body.at("details")[0];
    EXPECT_EQ(d.at("argument_name"), "message_filters.publish.topics");
    EXPECT_EQ(d.at("reason"), "constraint");
    EXPECT_EQ(d.at("help_message"), "bad topic");
    // A detail without a reason still has one, or the SDK drops it.
    EXPECT_EQ(r.body.at("details")[1].at("reason"), "constraint");
}

TEST(MapRegistryError, PreconditionFailed) {
    hub::registry_error e(hub::error_kind::precondition_failed, "precondition is not respected");
    e.precondition = "resource_still_in_use";
    e.help_message = "the hub still has devices";
    const auto r = map_registry_error(e);
    EXPECT_EQ(r.status, 412u);
    EXPECT_EQ(r.body.at("type"), "precondition_failed");
    EXPECT_EQ(r.body.at("precondition"), "resource_still_in_use");
    EXPECT_EQ(r.body.at("help_message"), "the hub still has devices");
    // Both are required by the SDK, even when the registry gave none.
    hub::registry_error bare(hub::error_kind::precondition_failed, "no");
    const auto r2 = map_registry_error(bare);
    EXPECT_TRUE(is_string(r2.body, "precondition"));
    EXPECT_TRUE(is_string(r2.body, "help_message"));
}

TEST(MapRegistryError, PermissionsDenied) {
    hub::registry_error e(hub::error_kind::permissions_denied, "insufficient permissions");
    e.resource = "hub";
    const auto r = map_registry_error(e, "write");
    EXPECT_EQ(r.status, 403u);
    EXPECT_EQ(r.body.at("type"), "permissions_denied");
    EXPECT_EQ(r.body.at("details"),
              (json::array({json{{"resource", "hub"}, {"action", "write"}}})));
}

TEST(MapRegistryError, AlreadyExists) {
    hub::registry_error e(hub::error_kind::already_exists, "resource already exists");
    e.resource = "device";
    e.resource_id = "thermo";
    const auto r = map_registry_error(e);
    EXPECT_EQ(r.status, 409u);
    EXPECT_EQ(r.body.at("type"), "already_exists");
    EXPECT_EQ(r.body.at("resource"), "device");
    EXPECT_EQ(r.body.at("resource_id"), "thermo");
    EXPECT_TRUE(is_string(r.body, "help_message"));
}

TEST(MapRegistryError, QuotasExceeded) {
    hub::registry_error e(hub::error_kind::quotas_exceeded, "quota exceeded: 50 hubs per project");
    e.resource = "hub";
    const quota_info q{"hubs", 50, 50, "0e5c6f4a-8a7b-4c6d-9e1f-2a3b4c5d6e7f"};
    const auto r = map_registry_error(e, "write", &q);
    EXPECT_EQ(r.status, 403u);
    EXPECT_EQ(r.body.at("type"), "quotas_exceeded");
    ASSERT_EQ(r.body.at("details").size(), 1u);
    const auto& d = r.body.at("details")[0];
    EXPECT_EQ(d.at("resource"), "hubs");
    EXPECT_TRUE(d.at("quota").is_number());
    EXPECT_TRUE(d.at("current").is_number());
    EXPECT_EQ(d.at("project_id"), "0e5c6f4a-8a7b-4c6d-9e1f-2a3b4c5d6e7f");
    // Without numbers: no details, so the SDK shows the message instead of an empty list.
    const auto bare = map_registry_error(e);
    EXPECT_FALSE(bare.body.contains("details"));
    EXPECT_EQ(bare.body.at("message"), "quota exceeded: 50 hubs per project");
}

TEST(InvalidArgument, OneDetail) {
    const auto e = invalid_argument("hub_id", "format", "must be a UUID");
    EXPECT_EQ(e.kind, hub::error_kind::invalid_arguments);
    ASSERT_EQ(e.details.size(), 1u);
    EXPECT_EQ(e.details[0].argument_name, "hub_id");
    EXPECT_NE(std::string(e.what()).find("hub_id"), std::string::npos);
}

TEST(RequestErrors, StatusesAndTypes) {
    EXPECT_EQ(not_found_path("GET", "/x").status, 404u);
    EXPECT_EQ(not_found_path("GET", "/x").body.at("type"), "not_found");
    const auto region = wrong_region("nl-ams", "fr-par");
    EXPECT_EQ(region.status, 404u);
    EXPECT_NE(region.body.at("message").get<std::string>().find("fr-par"), std::string::npos);
    EXPECT_EQ(method_not_allowed("PUT", "/x").status, 405u);
    EXPECT_EQ(not_implemented("routes").status, 501u);
    EXPECT_EQ(not_implemented("routes").body.at("message"), "routes is not implemented yet");
    EXPECT_EQ(body_too_large(10).status, 413u);
    EXPECT_EQ(internal_error().status, 500u);
    EXPECT_EQ(service_unavailable("busy").status, 503u);
    for (const auto& r : {not_found_path("GET", "/"), wrong_region("a", "b"),
                          method_not_allowed("A", "/"), not_implemented("x"), body_too_large(1),
                          bad_request("x"), internal_error(), service_unavailable("x")}) {
        EXPECT_TRUE(is_string(r.body, "message")) << r.body;
        EXPECT_TRUE(is_string(r.body, "type")) << r.body;
    }
}

TEST(RequestErrors, DeniedAuthenticationHasMethodAndReason) {
    for (const char* reason : {"invalid_argument", "not_found"}) {
        const auto r = denied_authentication(reason);
        EXPECT_EQ(r.status, 401u);
        EXPECT_EQ(r.body.at("type"), "denied_authentication");
        EXPECT_TRUE(is_string(r.body, "method"));
        EXPECT_EQ(r.body.at("reason"), reason);
    }
}

}  // namespace
}  // namespace iothub::api
