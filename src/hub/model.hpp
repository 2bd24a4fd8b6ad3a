#pragma once
// Hubs and devices as the hub layer sees them. Records are immutable once published: a
// change makes a new record and swaps the pointer, so a reader holding one needs no lock.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iothub::hub {

enum class hub_status { unknown, error, enabling, ready, disabling, disabled };
enum class product_plan { plan_unknown, plan_shared, plan_dedicated, plan_ha };
enum class device_status { unknown, error, enabled, disabled };
enum class filter_policy { unknown, accept, reject };

// The API's enum strings ("plan_shared", "ready", "accept", …).
std::string_view to_string(hub_status s);
std::string_view to_string(product_plan p);
std::string_view to_string(device_status s);
std::string_view to_string(filter_policy p);
// nullopt for a string that is not one of the enum's values.
std::optional<hub_status> parse_hub_status(std::string_view s);
std::optional<product_plan> parse_product_plan(std::string_view s);
std::optional<device_status> parse_device_status(std::string_view s);
std::optional<filter_policy> parse_filter_policy(std::string_view s);

struct filter_rule {
    filter_policy policy = filter_policy::reject;  // empty reject list: everything allowed
    std::vector<std::string> topics;               // MQTT filters, may hold {{…}} templates

    friend bool operator==(const filter_rule&, const filter_rule&) = default;
};

struct message_filters {
    filter_rule publish;
    filter_rule subscribe;

    friend bool operator==(const message_filters&, const message_filters&) = default;
};

inline constexpr std::string_view default_events_topic_prefix = "$SCW/events";

struct hub_record {
    std::string id;  // UUID
    std::string name;
    std::string project_id;
    std::string organization_id;
    product_plan plan = product_plan::plan_shared;
    bool enabled = true;
    bool disable_events = false;
    std::string events_topic_prefix{default_events_topic_prefix};
    bool enable_device_auto_provisioning = false;
    bool has_custom_ca = false;
    // Extension: device connected / disconnected events (`presence_events` in the API).
    bool presence_events = true;
    std::optional<std::string> twins_graphite_push_uri;
    std::uint64_t created_at_ms = 0;
    std::uint64_t updated_at_ms = 0;
};

struct device_record {
    std::string id;  // UUID; the MQTT client id (or username)
    std::string hub_id;
    std::string name;  // unique in its hub, read-only
    std::string description;
    bool enabled = true;
    bool allow_insecure = false;
    bool allow_multiple_connections = false;
    message_filters filters;
    bool has_custom_certificate = false;
    // The SHA-256 fingerprint of the device's own certificate (issued by its hub's CA, or
    // custom); empty: none. A change (renewal, a custom certificate, a custom hub CA)
    // disconnects the device, which authenticates again.
    std::string certificate_fingerprint;
    std::uint64_t created_at_ms = 0;
    std::uint64_t updated_at_ms = 0;
};

using hub_ptr = std::shared_ptr<const hub_record>;
using device_ptr = std::shared_ptr<const device_record>;

// A fresh random (version 4) UUID in lower-case text form.
std::string make_uuid();
// True for the canonical 8-4-4-4-12 hex form (either case).
bool is_uuid(std::string_view s);

}  // namespace iothub::hub
