#pragma once
// MQTT control packets for protocol levels 3 (3.1), 4 (3.1.1) and 5 (5.0).
// Plain data: no I/O, no allocation policy beyond the standard library.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mqtt/reason_code.hpp"

namespace iothub::mqtt {

enum class protocol_version : std::uint8_t { v31 = 3, v311 = 4, v5 = 5 };

enum class packet_type : std::uint8_t {
    connect = 1,
    connack = 2,
    publish = 3,
    puback = 4,
    pubrec = 5,
    pubrel = 6,
    pubcomp = 7,
    subscribe = 8,
    suback = 9,
    unsubscribe = 10,
    unsuback = 11,
    pingreq = 12,
    pingresp = 13,
    disconnect = 14,
    auth = 15,
};

const char* to_string(packet_type t) noexcept;

struct user_property {
    std::string key;
    std::string value;
    bool operator==(const user_property&) const = default;
};

// MQTT 5 properties. Each field is present only when the packet carried it.
// Which properties a packet type may carry is checked by the decoder.
struct properties {
    std::optional<std::uint8_t> payload_format_indicator;      // 0x01
    std::optional<std::uint32_t> message_expiry_interval;      // 0x02
    std::optional<std::string> content_type;                   // 0x03
    std::optional<std::string> response_topic;                 // 0x08
    std::optional<std::string> correlation_data;               // 0x09 (binary)
    std::vector<std::uint32_t> subscription_identifiers;       // 0x0B (variable byte integer)
    std::optional<std::uint32_t> session_expiry_interval;      // 0x11
    std::optional<std::string> assigned_client_identifier;     // 0x12
    std::optional<std::uint16_t> server_keep_alive;            // 0x13
    std::optional<std::string> authentication_method;          // 0x15
    std::optional<std::string> authentication_data;            // 0x16 (binary)
    std::optional<std::uint8_t> request_problem_information;   // 0x17
    std::optional<std::uint32_t> will_delay_interval;          // 0x18
    std::optional<std::uint8_t> request_response_information;  // 0x19
    std::optional<std::string> response_information;           // 0x1A
    std::optional<std::string> server_reference;               // 0x1C
    std::optional<std::string> reason_string;                  // 0x1F
    std::optional<std::uint16_t> receive_maximum;              // 0x21
    std::optional<std::uint16_t> topic_alias_maximum;          // 0x22
    std::optional<std::uint16_t> topic_alias;                  // 0x23
    std::optional<std::uint8_t> maximum_qos;                   // 0x24
    std::optional<std::uint8_t> retain_available;              // 0x25
    std::vector<user_property> user_properties;                // 0x26
    std::optional<std::uint32_t> maximum_packet_size;          // 0x27
    std::optional<std::uint8_t> wildcard_subscription_available;      // 0x28
    std::optional<std::uint8_t> subscription_identifier_available;    // 0x29
    std::optional<std::uint8_t> shared_subscription_available;        // 0x2A

    bool operator==(const properties&) const = default;
};

struct will_message {
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    properties props;  // v5 will properties
    bool operator==(const will_message&) const = default;
};

struct connect {
    protocol_version version = protocol_version::v311;
    std::string protocol_name;  // "MQTT" (v3.1.1, v5) or "MQIsdp" (v3.1)
    bool clean_start = true;    // "clean session" before v5
    std::uint16_t keep_alive = 0;
    std::string client_id;
    std::optional<will_message> will;
    std::optional<std::string> username;
    std::optional<std::string> password;  // binary data
    properties props;
    bool operator==(const connect&) const = default;
};

struct connack {
    bool session_present = false;
    // v5 reason code. On 3.1/3.1.1 the encoder maps it to the return code
    // (0 accepted, 1 bad version, 2 id rejected, 3 unavailable, 4 bad user/pass, 5 not authorized).
    reason_code reason = reason_code::success;
    properties props;
    bool operator==(const connack&) const = default;
};

struct publish {
    bool dup = false;
    std::uint8_t qos = 0;
    bool retain = false;
    std::string topic;            // may be empty on v5 when a topic alias is used
    std::uint16_t packet_id = 0;  // only when qos > 0
    properties props;
    std::string payload;
    bool operator==(const publish&) const = default;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP share one shape.
struct ack {
    packet_type type = packet_type::puback;
    std::uint16_t packet_id = 0;
    reason_code reason = reason_code::success;  // v5 only on the wire
    properties props;
    bool operator==(const ack&) const = default;
};

struct subscription {
    std::string filter;  // as sent, including any "$share/{group}/" prefix
    std::uint8_t qos = 0;
    bool no_local = false;             // v5
    bool retain_as_published = false;  // v5
    std::uint8_t retain_handling = 0;  // v5: 0, 1 or 2
    bool operator==(const subscription&) const = default;
};

struct subscribe {
    std::uint16_t packet_id = 0;
    properties props;
    std::vector<subscription> subscriptions;
    bool operator==(const subscribe&) const = default;
};

struct suback {
    std::uint16_t packet_id = 0;
    properties props;
    // v5 reason codes; on 3.1.1 granted QoS 0..2 or 0x80 failure (the encoder maps
    // any code >= 0x80 to 0x80).
    std::vector<reason_code> reasons;
    bool operator==(const suback&) const = default;
};

struct unsubscribe {
    std::uint16_t packet_id = 0;
    properties props;
    std::vector<std::string> filters;
    bool operator==(const unsubscribe&) const = default;
};

struct unsuback {
    std::uint16_t packet_id = 0;
    properties props;
    std::vector<reason_code> reasons;  // v5 only on the wire
    bool operator==(const unsuback&) const = default;
};

struct pingreq {
    bool operator==(const pingreq&) const = default;
};
struct pingresp {
    bool operator==(const pingresp&) const = default;
};

struct disconnect {
    reason_code reason = reason_code::success;  // v5 only on the wire
    properties props;
    bool operator==(const disconnect&) const = default;
};

struct auth {
    reason_code reason = reason_code::success;
    properties props;
    bool operator==(const auth&) const = default;
};

// pingreq first: a default-constructed packet (one per packet read) costs nothing.
using packet = std::variant<pingreq, connect, connack, publish, ack, subscribe, suback,
                            unsubscribe, unsuback, pingresp, disconnect, auth>;

packet_type type_of(const packet& p) noexcept;

}  // namespace iothub::mqtt
