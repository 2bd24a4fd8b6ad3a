#pragma once
// Limits and protocol settings the broker enforces. Filled by the configuration layer.

#include <cstddef>
#include <cstdint>

namespace iothub::broker {

struct limits {
    std::uint32_t max_packet_size = 1024 * 1024;       // bytes, both directions
    std::size_t max_queued_messages = 1000;            // per session
    std::size_t max_queued_bytes = 16 * 1024 * 1024;   // per session (payload + topic)
    std::uint16_t max_inflight = 1000;                 // QoS 1/2 deliveries to a 3.x client
    std::uint16_t receive_maximum = 100;               // announced to v5 clients
    std::uint16_t topic_alias_maximum = 32;            // announced to v5 clients
    std::size_t max_topic_length = 65535;
    std::size_t max_topic_levels = 128;
    std::size_t max_connections = 0;                   // 0 = unlimited
    std::uint16_t max_keep_alive = 65535;              // seconds
    std::uint32_t max_session_expiry = 0xFFFFFFFF;     // seconds; 0xFFFFFFFF = never
    std::size_t max_retained = 1000000;                // per hub, 0 = unlimited
    bool retain_available = true;
    // The open development hub admits any client; off, every client is refused until the
    // device registry authenticates them.
    bool dev_hub_open = true;
    std::uint64_t drop_log_interval_ms = 10000;
};

}  // namespace iothub::broker
