#pragma once
// An application message as the broker keeps it: stored once, immutable, shared by
// reference between every subscriber queue, the retained store and the persistence layer.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>


namespace iothub::broker {

struct message {
    // User-provided, so that make_shared<message>() does not zero the object before the
    // member initializers run (value-initialization would).
    message() noexcept {}

    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    // v5 publish properties forwarded unchanged (payload format indicator, content type,
    // response topic, correlation data, user properties), encoded once, without the length
    // prefix. Message expiry, topic alias and subscription identifiers are per delivery.
    std::string props_wire;
    std::uint64_t expires_at_ms = 0;  // 0: never expires; else a wall-clock value in ms
    std::uint64_t origin = 0;         // session id of the publisher (for no-local), 0 = server

    bool expired(std::uint64_t now_ms) const noexcept {
        return expires_at_ms != 0 && now_ms >= expires_at_ms;
    }
};

// Bytes a queued message counts against a session's max_queued_bytes.
inline std::size_t message_size(const message& m) noexcept {
    return m.topic.size() + m.payload.size() + m.props_wire.size();
}

using message_ptr = std::shared_ptr<const message>;

}  // namespace iothub::broker
