#pragma once
// What the store keeps: plain values, independent of the MQTT codec and the broker.

#include <cstdint>
#include <string>
#include <vector>

namespace iothub::store {

struct retained_record {
    std::string hub;
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    std::string properties;          // opaque encoded bytes
    std::uint64_t expires_at_ms = 0;  // unix ms, 0 = never

    friend bool operator==(const retained_record&, const retained_record&) = default;
};

struct subscription_record {
    std::string filter;  // as subscribed, including a `$share/group/` prefix
    std::uint8_t qos = 0;
    bool no_local = false;
    bool retain_as_published = false;
    std::uint8_t retain_handling = 0;
    std::uint32_t identifier = 0;

    friend bool operator==(const subscription_record&, const subscription_record&) = default;
};

enum class message_state : std::uint8_t {
    queued = 0,    // not yet sent
    sent = 1,      // sent, awaiting PUBACK or PUBREC
    released = 2,  // PUBREL sent, awaiting PUBCOMP
};

struct message_record {
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    std::string properties;
    std::uint64_t expires_at_ms = 0;
    std::uint16_t packet_id = 0;
    message_state state = message_state::queued;
    bool dup = false;

    friend bool operator==(const message_record&, const message_record&) = default;
};

struct session_record {
    std::string hub;
    std::string client_id;
    std::uint8_t protocol_version = 4;
    std::uint32_t expiry_interval = 0;
    std::uint64_t disconnected_at_ms = 0;  // unix ms
    std::vector<subscription_record> subscriptions;
    std::vector<message_record> messages;     // in delivery order
    std::vector<std::uint16_t> incoming_qos2;  // ids answered with PUBREC, awaiting PUBREL

    friend bool operator==(const session_record&, const session_record&) = default;
};

}  // namespace iothub::store
