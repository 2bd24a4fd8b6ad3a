#pragma once
// Who a client is and what it may do, decided outside the broker (hub/ implements it).
// The broker asks at CONNECT, enforces the rules it gets back on every PUBLISH, SUBSCRIBE
// and will, and reports refusals and presence so the hub can publish its events.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mqtt/packet.hpp"
#include "mqtt/reason_code.hpp"

namespace iothub::broker {

class worker;

// A topic allow-list or deny-list of MQTT filters, already expanded for one client.
struct topic_rule {
    bool accept = false;               // true: only the filters; false: all but them
    std::vector<std::string> filters;  // empty reject list: everything allowed

    bool allows(std::string_view topic) const;
    // For a SUBSCRIBE filter: an accept list allows a filter only when every topic it can
    // match is allowed (it equals or is covered by a listed filter); a reject list refuses
    // a filter that can match a rejected topic.
    bool allows_filter(std::string_view filter) const;
    bool unrestricted() const noexcept { return !accept && filters.empty(); }
};

// What an admitted client may do beyond the protocol. Immutable once shared; a change (new
// filters, say) replaces it whole on the client's worker.
struct client_identity {
    std::string hub;        // hub id: the topic space and the events' hub
    std::string device_id;  // the device the client authenticated as
    topic_rule publish;
    topic_rule subscribe;
    topic_rule reserved;                // a reject list no filter overrides (hub events)
    bool retain_allowed = true;         // publishing retained messages
    std::uint8_t max_publish_qos = 2;   // above it: refused
    std::uint8_t max_subscribe_qos = 2; // above it: refused
    bool insecure = true;               // authenticated without a client certificate
};
using identity_ptr = std::shared_ptr<const client_identity>;

// The outcome of CONNECT's authentication.
struct admission {
    mqtt::reason_code rc = mqtt::reason_code::success;  // not success: refused
    std::string reason;      // refusal text (v5 reason string and the log)
    std::string hub;         // topic space of the session
    std::string client_id;   // the client id the session uses (may differ from CONNECT's)
    identity_ptr identity;   // null: the open development hub, no rules
};

// How a client reached the server, as the transport saw it.
struct link_info {
    std::string peer;    // "address:port"
    bool tls = false;    // the transport is TLS (mqtts, wss)
    // The certificate chain the client presented in the TLS handshake, leaf first, DER;
    // empty without TLS or without a client certificate. The TLS layer does not judge it:
    // the gatekeeper decides what it proves.
    std::vector<std::string> certificates;
};

enum class refusal : std::uint8_t {
    publish_topic,       // PUBLISH to a topic the filters refuse
    subscribe_topic,     // SUBSCRIBE to a filter the filters refuse
    will_topic,          // CONNECT with a will the filters refuse
    retain_forbidden,    // retained PUBLISH where the plan forbids it
    publish_qos,         // PUBLISH above the plan's QoS
    subscribe_qos,       // SUBSCRIBE above the plan's QoS
    payload_too_large,   // PUBLISH over the size limit
};

class gatekeeper {
public:
    virtual ~gatekeeper() = default;
    // Called on the worker that read the CONNECT, and again on the session's worker when the
    // connection moves there first: an admission may have no side effects but idempotent
    // ones (auto-provisioning creates its device the first time only). A refusal may have
    // some (a hub event).
    virtual admission admit(worker& w, const mqtt::connect& c, const link_info& link) = 0;
    // The client's action was refused by its identity's rules.
    virtual void refused(worker& w, const client_identity& id, refusal r, std::string_view topic) = 0;
    // After a successful CONNACK, and when that connection ends (`reason`: why).
    virtual void connected(worker& w, const client_identity& id, std::string_view client_id,
                           std::string_view peer) = 0;
    virtual void disconnected(worker& w, const client_identity& id, std::string_view client_id,
                              std::string_view reason) = 0;
    // The connection is closed for bad input (malformed packet, protocol error).
    virtual void protocol_error(worker& w, const client_identity& id, std::string_view text) = 0;
};

}  // namespace iothub::broker
