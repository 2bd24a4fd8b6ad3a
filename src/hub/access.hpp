#pragma once
// The hub layer's side of the broker: who a client is (CONNECT), what it may do (its
// device's filters and its hub's plan), the hub events this raises, presence, and the live
// effect of registry changes on connected devices.

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/gatekeeper.hpp"
#include "hub/events.hpp"
#include "hub/registry.hpp"
#include "pki/crl.hpp"

namespace iothub::broker {
class broker;
class connection;
}

namespace iothub::hub {

// Expands {{hub.id}}, {{hub.name}}, {{device.id}}, {{device.name}} (spaces inside the
// braces allowed) in a filter topic.
std::string expand_templates(std::string_view topic, const hub_record& h, const device_record& d);

// The rules of a device's connection: its filters, expanded, and its hub's plan.
broker::identity_ptr make_identity(const hub_record& h, const device_record& d, bool insecure);

class access final : public broker::gatekeeper,
                     public registry_listener,
                     public presence_source {
public:
    access(broker::broker& b, registry& reg, clock_fn clock);

    // gatekeeper (worker threads)
    broker::admission admit(broker::worker& w, const mqtt::connect& c,
                            const broker::link_info& link) override;
    void refused(broker::worker& w, const broker::client_identity& id, broker::refusal r,
                 std::string_view topic) override;
    void connected(broker::worker& w, const broker::client_identity& id,
                   std::string_view client_id, std::string_view peer) override;
    void disconnected(broker::worker& w, const broker::client_identity& id,
                      std::string_view client_id, std::string_view reason) override;
    void protocol_error(broker::worker& w, const broker::client_identity& id,
                        std::string_view text) override;

    // registry_listener (the API thread)
    void hub_changed(const hub_ptr& before, const hub_ptr& after) override;
    void device_changed(const device_ptr& before, const device_ptr& after) override;

    // presence_source (any thread)
    bool is_connected(std::string_view device_id) const override;
    std::uint64_t last_activity_ms(std::string_view device_id) const override;
    std::uint64_t connected_devices(std::string_view hub_id) const override;

    event_publisher& events() noexcept { return events_; }

    // The certificate revocation lists every client certificate is checked against (any
    // thread; null: none). The next CONNECT uses them; connected clients stay connected.
    void set_crls(pki::crl_set_ptr crls) { crls_.store(std::move(crls)); }
    pki::crl_set_ptr crls() const { return crls_.load(); }

private:
    // How the device was identified at CONNECT.
    enum class identified_by : std::uint8_t { client_id, username, certificate };

    // A refusal (not_authorized) with `msg` as its reason (and `detail` after it, for the
    // client and the log); a hub event `msg` on `hub_id` unless it is empty.
    broker::admission refuse(broker::worker& w, const std::string& hub_id,
                             const std::string& device_id, const char* msg,
                             const std::string& detail = {});
    // CONNECT with a client certificate (see admit).
    broker::admission admit_certificate(broker::worker& w, const mqtt::connect& c,
                                        const broker::link_info& link);
    // The checks every identified device passes (hub and device state, transport security,
    // the plan), and the session's client id.
    broker::admission admit_device(broker::worker& w, const mqtt::connect& c, const device_ptr& dev,
                                   identified_by how);
    // A certificate that identifies no device: the event goes to `hub_id` when a hub's CA
    // was involved, else to the hub of the device the client id (or username) names.
    broker::admission refuse_certificate(broker::worker& w, const mqtt::connect& c,
                                         const std::string& hub_id, const char* msg,
                                         const std::string& detail = {});
    // Runs `fn` on every worker for each connection of the hub (and device, when given).
    void for_connections(std::string hub_id, std::string device_id,
                         std::function<void(broker::worker&, broker::connection&)> fn);

    // Drops the offline sessions of a deleted hub (and its retained messages), or of one
    // deleted device (`client_id`).
    void forget(const std::string& hub_id, const std::string& client_id);

    broker::broker& broker_;
    registry& registry_;
    clock_fn clock_;
    event_publisher events_;
    // Replaced whole by set_crls, read by workers at CONNECT.
    std::atomic<pki::crl_set_ptr> crls_;

    struct device_presence {
        std::string hub_id;
        unsigned connections = 0;
        std::uint64_t last_activity_ms = 0;
    };
    mutable std::mutex presence_mutex_;
    std::unordered_map<std::string, device_presence> presence_;
    std::unordered_map<std::string, std::uint64_t> connected_per_hub_;
};

}  // namespace iothub::hub
