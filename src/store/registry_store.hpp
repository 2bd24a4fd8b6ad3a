#pragma once
// The device registry's tables: hubs, devices, their certificates and API keys. Unlike retained
// messages and sessions, registry writes are synchronous: the call returns once the change
// committed (or throws), so the API answers only for what is durable and nothing is half-written.
// Thread-safe: every call takes the store's own lock.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace iothub::store {

struct hub_row {
    std::string id;  // UUID
    std::string project_id;
    std::string organization_id;
    std::string name;
    std::string product_plan;  // "plan_shared" | "plan_dedicated" | "plan_ha"
    bool enabled = true;
    bool disable_events = false;
    std::string events_topic_prefix;
    bool enable_device_auto_provisioning = false;
    bool has_custom_ca = false;
    bool presence_events = true;
    std::string twins_graphite_push_uri;  // empty = none
    std::uint64_t created_at_ms = 0;
    std::uint64_t updated_at_ms = 0;

    friend bool operator==(const hub_row&, const hub_row&) = default;
};

struct device_row {
    std::string id;  // UUID
    std::string hub_id;
    std::string name;
    std::string description;
    bool enabled = true;
    bool allow_insecure = false;
    bool allow_multiple_connections = false;
    std::string publish_policy = "reject";  // "accept" | "reject"
    std::vector<std::string> publish_topics;
    std::string subscribe_policy = "reject";
    std::vector<std::string> subscribe_topics;
    bool has_custom_certificate = false;
    std::uint64_t created_at_ms = 0;
    std::uint64_t updated_at_ms = 0;
    std::uint64_t last_activity_at_ms = 0;  // 0 = never

    friend bool operator==(const device_row&, const device_row&) = default;
};

// A hub's certificate authority: made by iothub, or the customer's own (SetHubCA).
struct hub_ca_row {
    std::string hub_id;
    std::string cert_pem;
    std::string key_pem;  // empty for a custom CA: its key is the customer's
    bool custom = false;

    friend bool operator==(const hub_ca_row&, const hub_ca_row&) = default;
};

// A device's own certificate (never its key).
struct device_certificate_row {
    std::string device_id;
    std::string cert_pem;
    std::string fingerprint;  // hex SHA-256 of the DER; unique over every hub
    std::string kind;         // "issued" (by the hub's CA) | "custom"

    friend bool operator==(const device_certificate_row&, const device_certificate_row&) = default;
};

struct api_key_row {
    std::string access_key;   // public id, e.g. "SCW…" (shown by `apikey list`)
    std::string secret_hash;  // hex SHA-256 of the secret key; the secret itself is not kept
    std::string project_id;
    std::string description;
    std::uint64_t created_at_ms = 0;

    friend bool operator==(const api_key_row&, const api_key_row&) = default;
};

class registry_store {
public:
    virtual ~registry_store() = default;

    // Start-up read of every hub and device, in id order, then of every hub CA and device
    // certificate, all from one snapshot. A callback may be empty.
    virtual void load(const std::function<void(hub_row&&)>& hub,
                      const std::function<void(device_row&&)>& device,
                      const std::function<void(hub_ca_row&&)>& ca,
                      const std::function<void(device_certificate_row&&)>& certificate) = 0;
    void load(const std::function<void(hub_row&&)>& hub,
              const std::function<void(device_row&&)>& device) {
        load(hub, device, {}, {});
    }

    // Each call is one transaction; it throws std::runtime_error when it did not commit,
    // leaving the database as it was.
    virtual void put_hub(const hub_row& h) = 0;  // insert or replace
    // Erases the hub, its CA, and every device of it with their certificates.
    virtual void erase_hub(const std::string& id) = 0;
    virtual void put_device(const device_row& d) = 0;  // insert or replace
    virtual void put_devices(const std::vector<device_row>& ds) = 0;  // one transaction
    // Erases the device and its certificate.
    virtual void erase_device(const std::string& id) = 0;

    // The hub (insert or replace) and its CA (replacing the one it had). `drop_issued`:
    // also erases the certificates of kind "issued" of the hub's devices, as a custom CA
    // does to the hub's own PKI.
    virtual void put_hub_ca(const hub_row& h, const hub_ca_row& ca, bool drop_issued) = 0;
    // The device (insert or replace) and its certificate, replacing the one it had. Throws,
    // writing nothing, when another device holds a certificate of that fingerprint.
    virtual void put_device_certificate(const device_row& d, const device_certificate_row& c) = 0;

    virtual void put_api_key(const api_key_row& k) = 0;
    // False when no key has that access key.
    virtual bool erase_api_key(const std::string& access_key) = 0;
    virtual std::vector<api_key_row> list_api_keys() = 0;
    virtual std::optional<api_key_row> find_api_key_by_hash(const std::string& secret_hash) = 0;
};

// Opens the registry tables of `<data_dir>/iothub.db` (the same file as the message
// store, its own connection), creating and migrating them as open_sqlite_store does.
std::unique_ptr<registry_store> open_sqlite_registry(const std::string& data_dir);
// A registry store that keeps everything in memory (persistence off, and tests).
std::unique_ptr<registry_store> make_memory_registry();

}  // namespace iothub::store
