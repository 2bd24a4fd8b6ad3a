#pragma once
// What registry.cpp and registry_pki.cpp share: the registry's indexes and the IoT API's
// errors. Private to hub/.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hub/registry.hpp"
#include "pki/pki.hpp"
#include "store/registry_store.hpp"

namespace iothub::hub {

namespace detail {

// A hub's CA with its key.
struct hub_ca_entry {
    hub_ca_ptr pub;       // what lookups hand out
    std::string key_pem;  // empty for a custom CA
};
using hub_ca_entry_ptr = std::shared_ptr<const hub_ca_entry>;

}  // namespace detail

// Lock order: write_mutex, then mutex_ (the header's), then activity_mutex. Writers hold
// write_mutex from their checks until the change is in memory, so the checks see the state
// the write applies to; they take mutex_ only to publish, so a slow store write never blocks
// the workers' lookups. hubs_, devices_, by_hub and the PKI maps change only under both
// locks, so holding either one is enough to read them.
struct registry::indexes {
    // Each hub's devices by name: device counts, name lookups, devices_of.
    std::unordered_map<std::string, std::map<std::string, device_ptr>> by_hub;
    std::mutex write_mutex;

    bool has_device_named(const std::string& hub_id, const std::string& name) const {
        const auto it = by_hub.find(hub_id);
        return it != by_hub.end() && it->second.contains(name);
    }

    bool any_multiple_connections(const std::string& hub_id) const {
        const auto it = by_hub.find(hub_id);
        if (it == by_hub.end()) return false;
        return std::any_of(it->second.begin(), it->second.end(), [](const auto& entry) {
            return entry.second->allow_multiple_connections;
        });
    }

    struct activity {
        std::uint64_t latest = 0;     // the newest reported
        std::uint64_t persisted = 0;  // the newest written to the store
    };
    std::mutex activity_mutex;
    std::unordered_map<std::string, activity> activity_of;  // guarded by activity_mutex

    // --- The PKI: each hub's CA, each device's certificate.
    using ca_ptr = detail::hub_ca_entry_ptr;
    std::unordered_map<std::string, ca_ptr> cas;                        // by hub id
    std::unordered_multimap<std::uint32_t, std::string> ca_by_subject;  // subject hash → hub id
    struct certificate {
        std::string pem;
        std::string fingerprint;
        bool issued = false;  // by the hub's CA; false: custom
    };
    std::unordered_map<std::string, certificate> certificates;  // by device id
    std::unordered_map<std::string, std::string> device_by_fingerprint;
    pki::key_type device_key = pki::key_type::rsa_2048;

    // Publishing helpers; the caller holds both locks.
    void put_ca(const std::string& hub_id, ca_ptr ca) {
        drop_ca(hub_id);
        ca_by_subject.emplace(ca->pub->subject_hash, hub_id);
        cas[hub_id] = std::move(ca);
    }
    void drop_ca(const std::string& hub_id) {
        const auto it = cas.find(hub_id);
        if (it == cas.end()) return;
        auto [first, last] = ca_by_subject.equal_range(it->second->pub->subject_hash);
        for (auto i = first; i != last; ++i) {
            if (i->second == hub_id) {
                ca_by_subject.erase(i);
                break;
            }
        }
        cas.erase(it);
    }
    void put_certificate(const std::string& device_id, certificate c) {
        drop_certificate(device_id);
        device_by_fingerprint[c.fingerprint] = device_id;
        certificates[device_id] = std::move(c);
    }
    void drop_certificate(const std::string& device_id) {
        const auto it = certificates.find(device_id);
        if (it == certificates.end()) return;
        device_by_fingerprint.erase(it->second.fingerprint);
        certificates.erase(it);
    }
};

namespace detail {

// Errors, with the messages of the IoT API.
registry_error not_found(std::string resource, std::string_view id);
registry_error invalid(std::vector<argument_error> details);
registry_error invalid(std::string argument, std::string reason, std::string help);
registry_error precondition(std::string which, std::string help);
registry_error already_exists(std::string resource, std::string_view id);
registry_error quota_exceeded(std::string resource, const std::string& what);

// A hub's own CA, made at its creation (and at start-up for hubs older than the PKI),
// as the row to store.
store::hub_ca_row make_hub_ca(const std::string& hub_id);
// The memory entry of a CA row; throws std::runtime_error when its certificate is unreadable.
hub_ca_entry_ptr ca_entry_of(const store::hub_ca_row& row);
// A client certificate for the device `name`, from a hub's own CA, with a fresh key.
device_credentials issue_device_certificate(const hub_ca_entry& ca, const std::string& name,
                                            pki::key_type k);

}  // namespace detail

}  // namespace iothub::hub
