#pragma once
// The device registry: hubs and devices in memory, written through to the registry store.
// Thread-safe. The API thread changes it; workers read it at CONNECT (lookups return
// immutable records). A change is applied in memory only after the store committed it,
// so a failed write leaves nothing half-done. Live effects of a change (disconnecting a
// device, new filters) go to the registry's listener after the change is applied.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hub/model.hpp"
#include "pki/pki.hpp"

namespace iothub::store {
class registry_store;
struct hub_ca_row;
}

namespace iothub::hub {

// The error kinds of the IoT API (their `type` strings are chosen in api/).
enum class error_kind {
    not_found,            // resource / resource_id say what
    invalid_arguments,    // details say which arguments
    precondition_failed,  // precondition + help message
    permissions_denied,
    already_exists,
    quotas_exceeded,
};

struct argument_error {
    std::string argument_name;  // API field name, e.g. "message_filters.publish.topics"
    std::string reason;         // "required" | "format" | "constraint"
    std::string help_message;
};

class registry_error : public std::runtime_error {
public:
    registry_error(error_kind k, const std::string& message) : std::runtime_error(message), kind(k) {}

    error_kind kind;
    std::string resource;     // "hub" | "device", for not_found / already_exists
    std::string resource_id;  // the id (or name) asked for
    std::vector<argument_error> details;  // invalid_arguments
    std::string precondition;             // precondition_failed, e.g. "resource_still_in_use"
    std::string help_message;             // precondition_failed
};

// Whose resources a call may see: the project of the caller's API key.
struct scope {
    std::string project_id;
};

template <typename T>
struct page {
    std::vector<T> items;
    std::uint64_t total_count = 0;  // matching items over every page
};

struct paging {
    std::uint32_t page = 1;        // from 1
    std::uint32_t page_size = 20;  // 1..100
    std::string order_by;          // API value such as "name_asc"; empty = the default
};

struct hub_view {
    hub_ptr hub;
    hub_status status = hub_status::ready;  // what the API reports
    std::uint64_t device_count = 0;
    std::uint64_t connected_device_count = 0;
};

struct device_view {
    device_ptr device;
    bool is_connected = false;
    std::uint64_t last_activity_at_ms = 0;  // 0 = never
};

// A fresh client certificate and its private key: shown once, the key never stored.
struct device_credentials {
    std::string crt;  // PEM
    std::string key;  // PEM "RSA PRIVATE KEY" (or "PRIVATE KEY" for EC keys)
};

// A device just created or given a new certificate.
struct device_created : device_view {
    std::optional<device_credentials> certificate;  // none on a hub with a custom CA
};

struct device_certificate_view {
    device_view device;
    std::string certificate_pem;
};

// A hub's certificate authority as the MQTT side sees it (never its key).
struct hub_ca {
    std::string hub_id;
    std::string cert_pem;
    bool custom = false;             // the customer's (SetHubCA), not iothub's own
    std::uint32_t subject_hash = 0;  // pki::cert_info::subject_hash of the certificate
};
using hub_ca_ptr = std::shared_ptr<const hub_ca>;

// What auto-provisioning found or made.
struct provisioned_device {
    device_ptr device;
    bool created = false;  // false: a device of that name was already there
};

// The subject organisation of the certificates iothub issues to devices and hub CAs.
inline constexpr std::string_view issued_organization = "iothub";

struct hub_create {
    std::string name;        // empty: a random "hub-…" name
    std::string project_id;  // empty: the caller's project
    product_plan plan = product_plan::plan_unknown;  // unknown: plan_shared
    std::optional<bool> disable_events;
    std::optional<std::string> events_topic_prefix;
    std::optional<bool> presence_events;
    std::optional<std::string> twins_graphite_push_uri;
};

struct hub_update {
    std::optional<std::string> name;
    std::optional<product_plan> plan;  // only while the hub is disabled
    std::optional<bool> disable_events;
    std::optional<std::string> events_topic_prefix;
    std::optional<bool> enable_device_auto_provisioning;  // only with a custom CA
    std::optional<bool> presence_events;
    std::optional<std::string> twins_graphite_push_uri;
};

struct hub_filter {
    std::optional<std::string> project_id;
    std::optional<std::string> organization_id;
    std::optional<std::string> name;  // substring
};

struct device_create {
    std::string hub_id;
    std::string name;  // empty: a random "device-…" name
    std::string description;
    bool allow_insecure = false;
    bool allow_multiple_connections = false;
    std::optional<message_filters> filters;
};

struct device_update {
    std::optional<std::string> description;
    std::optional<bool> allow_insecure;
    std::optional<bool> allow_multiple_connections;
    std::optional<message_filters> filters;
    std::optional<std::string> hub_id;
};

struct device_filter {
    std::optional<std::string> hub_id;
    std::optional<std::string> name;  // substring
    std::optional<bool> allow_insecure;
    std::optional<device_status> status;
};

struct registry_limits {
    std::uint32_t max_devices_per_hub = 10000;
    std::uint32_t max_hubs_per_project = 50;
};

// Told of changes after they are applied; called on the thread that made the change,
// never with the registry's lock held.
class registry_listener {
public:
    virtual ~registry_listener() = default;
    // `before` is null for a new hub; `after` is null when it was deleted.
    virtual void hub_changed(const hub_ptr& before, const hub_ptr& after) = 0;
    virtual void device_changed(const device_ptr& before, const device_ptr& after) = 0;
};

// Live state of the devices, reported by the MQTT side.
class presence_source {
public:
    virtual ~presence_source() = default;
    virtual bool is_connected(std::string_view device_id) const = 0;
    virtual std::uint64_t last_activity_ms(std::string_view device_id) const = 0;  // 0 = never
    virtual std::uint64_t connected_devices(std::string_view hub_id) const = 0;
};

using clock_fn = std::function<std::uint64_t()>;  // wall-clock unix ms

class registry {
public:
    // `db` outlives the registry; `clock` gives unix ms.
    registry(store::registry_store& db, clock_fn clock, registry_limits limits = {});
    ~registry();
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    // Reads every hub and device from the store (start-up).
    void load();
    void set_listener(registry_listener* l) noexcept { listener_ = l; }
    void set_presence(const presence_source* p) noexcept { presence_ = p; }

    // --- The IoT API's operations. Each throws registry_error; a resource outside the
    // caller's project is reported as not found.
    hub_view create_hub(const scope& sc, const hub_create& req);
    hub_view get_hub(const scope& sc, std::string_view id) const;
    page<hub_view> list_hubs(const scope& sc, const hub_filter& f, const paging& p) const;
    hub_view update_hub(const scope& sc, std::string_view id, const hub_update& req);
    hub_view enable_hub(const scope& sc, std::string_view id);   // reports "enabling"
    hub_view disable_hub(const scope& sc, std::string_view id);  // reports "disabling"
    // Refused (precondition_failed) while the hub has devices, unless delete_devices.
    void delete_hub(const scope& sc, std::string_view id, bool delete_devices);

    // With a certificate signed by the hub's CA, unless the hub has a custom CA.
    device_created create_device(const scope& sc, const device_create& req);
    device_view get_device(const scope& sc, std::string_view id) const;
    page<device_view> list_devices(const scope& sc, const device_filter& f, const paging& p) const;
    device_view update_device(const scope& sc, std::string_view id, const device_update& req);
    device_view enable_device(const scope& sc, std::string_view id);
    device_view disable_device(const scope& sc, std::string_view id);
    void delete_device(const scope& sc, std::string_view id);

    // --- Certificates (registry_pki.cpp).
    // The hub's CA certificate (PEM).
    std::string get_hub_ca(const scope& sc, std::string_view hub_id) const;
    // Replaces the hub's CA by the customer's `ca_pem`, proven by `challenge_pem` (signed by
    // that CA, common name = the hub id); only while the hub is disabled. Irreversible: the
    // devices' issued certificates are deleted and renewals refused from then on.
    hub_view set_hub_ca(const scope& sc, std::string_view hub_id, const std::string& ca_pem,
                        const std::string& challenge_pem);
    // The device's certificate; not_found ("certificate") when it has none.
    device_certificate_view get_device_certificate(const scope& sc, std::string_view id) const;
    // A new key pair and certificate from the hub's CA, replacing the device's certificate
    // (issued or custom); refused (precondition_failed) on a hub with a custom CA.
    device_created renew_device_certificate(const scope& sc, std::string_view id);
    // A certificate of the customer's (need not be signed by the hub's CA), matched by its
    // fingerprint, which no other device may have (already_exists).
    device_certificate_view set_device_certificate(const scope& sc, std::string_view id,
                                                   const std::string& certificate_pem);
    // The key type of the certificates issued to devices (RSA-2048 by default, as the
    // hosted service; EC keys are much faster to make).
    void set_device_key_type(pki::key_type k);

    // --- Lookups for the MQTT side (any thread, no scope). Null when absent.
    hub_ptr find_hub(std::string_view id) const;
    device_ptr find_device(std::string_view id) const;
    device_ptr find_device_by_name(std::string_view hub_id, std::string_view name) const;
    std::vector<device_ptr> devices_of(std::string_view hub_id) const;
    // The device whose own certificate (issued or custom) has this SHA-256 fingerprint.
    device_ptr find_device_by_certificate(std::string_view fingerprint) const;
    hub_ca_ptr find_hub_ca(std::string_view hub_id) const;
    // The CAs whose subject name hashes to `subject_hash`: the candidates for a certificate
    // whose issuer_hash it is.
    std::vector<hub_ca_ptr> cas_with_subject(std::uint32_t subject_hash) const;

    // Auto-provisioning (any thread, no scope): the hub's device named `name`, created with
    // the documented defaults (no filters, allow_insecure false) when there is none. Throws
    // registry_error (the hub is gone, the name is invalid, the hub is full).
    provisioned_device provision_device(std::string_view hub_id, const std::string& name,
                                        const std::string& description);

    // Reports activity of a device (any thread): kept in memory, never waits for the store.
    // Unknown ids are ignored.
    void record_activity(std::string_view device_id, std::uint64_t ms) noexcept;
    // Writes the activity reported since the last flush, in one transaction (called
    // periodically and at shutdown). Returns how many devices were written; never throws.
    std::size_t flush_activity() noexcept;

    // Validates one message filter list (used by create/update; exposed for tests).
    static std::vector<argument_error> check_filters(const message_filters& f,
                                                     const std::string& field);

private:
    // Lookups that throw not_found; the caller holds mutex_ (shared) or the write lock.
    hub_ptr hub_in_scope(const scope& sc, std::string_view id) const;
    device_ptr device_in_scope(const scope& sc, std::string_view id) const;
    std::uint64_t device_count(const std::string& hub_id) const;
    // Views; they call presence_, so no lock may be held.
    hub_view hub_view_of(hub_ptr h, hub_status status, std::uint64_t devices) const;
    device_view device_view_of(device_ptr d) const;

    hub_view set_hub_enabled(const scope& sc, std::string_view id, bool enabled);
    device_view set_device_enabled(const scope& sc, std::string_view id, bool enabled);
    // Write through, then publish in memory; the caller holds the write lock.
    void commit_hub(const hub_ptr& after);
    void commit_device(const device_ptr& before, const device_ptr& after);
    // The hub with its CA (`drop_issued`: a custom CA, which deletes the issued
    // certificates of `changed` devices, whose new records clear their fingerprint).
    void commit_hub_ca(const hub_ptr& after, const store::hub_ca_row& ca, bool drop_issued,
                       const std::vector<std::pair<device_ptr, device_ptr>>& changed = {});
    // The device with its certificate (`issued`: by the hub's CA).
    void commit_device_certificate(const device_ptr& before, const device_ptr& after,
                                   const std::string& pem, bool issued);
    std::string unused_device_name(const std::string& hub_id) const;
    void notify(const hub_ptr& before, const hub_ptr& after) const;
    void notify(const device_ptr& before, const device_ptr& after) const;

    store::registry_store& db_;
    clock_fn clock_;
    registry_limits limits_;
    registry_listener* listener_ = nullptr;
    const presence_source* presence_ = nullptr;
    mutable std::shared_mutex mutex_;
    std::unordered_map<std::string, hub_ptr> hubs_;
    std::unordered_map<std::string, device_ptr> devices_;
    // Further indexes (devices per hub, names per hub) are the implementation's choice; with
    // them the write lock and the devices' last activity.
    struct indexes;
    std::unique_ptr<indexes> idx_;
};

}  // namespace iothub::hub
